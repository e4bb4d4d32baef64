"""Formerly wrote the periodic job(s) compliance-deadlines into beat's tables.

Now a no-op: the periodic jobs live in ``exchange/schedule.py`` and one idempotent step writes them (the
post_migrate hook and ``manage.py sync_schedule``). A database migrated before keeps its rows, which that
step brings in line.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0008_compliance_invariants"),
        ("exchange", "0003_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations: list[migrations.operations.base.Operation] = []
