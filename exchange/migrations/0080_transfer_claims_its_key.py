"""``greenledger_transfer`` claims the transfer's Idempotency-Key and keeps its answer in its one statement,
and applies the trust rule; the journal-key and pending-key arguments it no longer reads are gone.

The argument list changes, so the previous definition is dropped before the file is loaded.
"""

from django.db import migrations

from exchange.sql import sql_file

PREVIOUS = (
    "DROP FUNCTION IF EXISTS greenledger_transfer(bigint, bigint, text, text, text, text, text, timestamptz, "
    "bigint, bigint, bigint, bigint, text, text, text, text, text, text, bigint)"
)


class Migration(migrations.Migration):
    dependencies = [("exchange", "0070_calendar")]

    operations = [migrations.RunSQL(sql=[PREVIOUS, sql_file("greenledger_transfer")], reverse_sql=migrations.RunSQL.noop)]
