"""Load ``greenledger_balances_post``, the balance bookkeeping of a posting (lock the rows in key order, check
what is available, write the balances and the postings), and ``greenledger_transfer`` again, which now calls
it as ``ledger_post`` does."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0303_project_filed_on_help")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_balances_post"), sql_file("greenledger_transfer")],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
