"""Test settings: the real PostgreSQL and Redis where reachable, else SQLite and the in-process broker."""

from config.services import configure_test_environment

configure_test_environment()

from config.settings import *  # noqa: E402, F403
from config.settings import GREENLEDGER, REST_FRAMEWORK  # noqa: E402

DEBUG = False
GREENLEDGER["ENFORCE_AUDIT"] = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": [], "DEFAULT_THROTTLE_RATES": {}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "CRITICAL"}}
