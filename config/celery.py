"""The Celery app. Redis from ``REDIS_URL``; without it an in-process broker (see ``manage.py serve``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("greenledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
