"""Formerly wrote the periodic job(s) session-close every minute (replacing the two fixed closes) into beat's tables.

Now a no-op: the periodic jobs live in ``exchange/schedule.py`` and one idempotent step writes them (the
post_migrate hook and ``manage.py sync_schedule``). A database migrated before keeps its rows, which that
step brings in line.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0021_approval_idempotency_key"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations: list[migrations.operations.base.Operation] = []
