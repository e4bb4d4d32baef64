"""Formerly: ``greenledger_transfer`` honours a key already used by a pending transfer.

This migration redefined the function by rewriting migration 0016's text. The function now lives once,
in ``exchange/sql/greenledger_transfer.sql`` (pending keys included), and migration
0024_posting_sql_files loads it; this step is kept, empty, so that migration history stays as it was.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("exchange", "0018_cheaper_trade_trigger")]

    operations: list[migrations.operations.base.Operation] = []
