"""Formerly wrote the periodic job(s) audit-seal, reconcile-nightly into beat's tables.

Now a no-op: the periodic jobs live in ``exchange/schedule.py`` and one idempotent step writes them (the
post_migrate hook and ``manage.py sync_schedule``). A database migrated before keeps its rows, which that
step brings in line.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0002_postgres_invariants"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations: list[migrations.operations.base.Operation] = []
