"""Load ``greenledger_balances_post`` again: it now writes the holds a posting consumes (what each has left, and
the end of those used up) and answers the ids of the holds it ended, so ``ledger_post`` no longer reads the
consumed holds back and writes them again. Its two new arguments (the ended holds' status and end time) make
it a new signature: the old one is dropped first. ``greenledger_transfer`` calls it with the defaults."""

from django.db import migrations

from exchange.sql import sql_file

OLD = (
    "greenledger_balances_post(bigint, bigint[], bigint[], bigint[], bigint[], bigint[], boolean[], bigint[], "
    "bigint[], int[], bigint[])"
)


class Migration(migrations.Migration):
    dependencies = [("exchange", "0315_redundant_indexes")]

    operations = [
        migrations.RunSQL(
            sql=[f"DROP FUNCTION IF EXISTS {OLD}", sql_file("greenledger_balances_post")],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
