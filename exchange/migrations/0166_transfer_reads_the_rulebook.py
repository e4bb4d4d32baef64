"""``greenledger_transfer`` applies the market's rulebook to a transfer between participants in its one statement
(non-trade only refused as SQLSTATE GL002, the trusted list per the rulebook): a new argument, ``p_cross``."""

from django.db import migrations

from exchange.sql import sql_file

PREVIOUS = (
    "DROP FUNCTION IF EXISTS greenledger_transfer(bigint, bigint, text, text, text, text, timestamptz, bigint, bigint, "
    "bigint, bigint, text, text, text, text, text, text, bigint, bigint, timestamptz, text, text, text, text, int, "
    "text, text)"
)


class Migration(migrations.Migration):
    dependencies = [("exchange", "0165_settlement_batch_index")]

    operations = [migrations.RunSQL(sql=[PREVIOUS, sql_file("greenledger_transfer")], reverse_sql=migrations.RunSQL.noop)]
