"""Taking an account's lowest serials is one SQL function, ``greenledger_blocks_take``, that both posting paths
call: ``greenledger_transfer`` (loaded again) and ``ledger_post``'s serial book."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0221_participantevent_no_foreign_key_checks")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_blocks_take"), sql_file("greenledger_transfer")],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
