"""Load the posting functions from ``exchange/sql``: journal entry, audit event, lowest blocks, transfer.

Each file is a complete ``CREATE OR REPLACE``, so this gives a fresh database and one migrated before
it the same live definitions. ``greenledger_transfer`` now opens its entry with
``greenledger_journal_open``, as ``journal_open`` does, reads only the blocks it takes (through
``greenledger_lowest_blocks``) and writes its audit event with ``greenledger_audit_record``, as
``audit_record`` does.
"""

from django.db import migrations

from exchange.sql import sql_file

FUNCTIONS = [
    "greenledger_journal_open",
    "greenledger_event_hash",
    "greenledger_audit_record",
    "greenledger_lowest_blocks",
    "greenledger_transfer",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0023_idempotent_requests_forget_schedule")]

    operations = [migrations.RunSQL(sql=[sql_file(name) for name in FUNCTIONS], reverse_sql=migrations.RunSQL.noop)]
