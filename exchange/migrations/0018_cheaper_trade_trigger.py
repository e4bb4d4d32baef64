"""The settle-once trade trigger made cheap for large batches, checking exactly what it checked before.

``greenledger_trade_settle_once`` (0005) looked for a bad row with ``... JOIN ... LIMIT 1``. With no bad row,
the LIMIT led the planner to a nested loop over the two transition tables (it expects to stop at the first
match): settling 100,000 trades compared 10^10 pairs, for minutes. It now takes the smallest bad id with
``min``, which plans as a hash join: the same rows are checked, in one pass.
"""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0017_posting_account_index")]

    operations = [migrations.RunSQL(sql=[sql_file("greenledger_trade_settle_once")], reverse_sql=migrations.RunSQL.noop)]
