"""One block writer for both posting paths: ``greenledger_blocks_put`` puts moved ranges and cut pieces into
the block table merged with their neighbours; ``greenledger_transfer`` now calls it, as ``ledger_post``'s serial
book does, instead of merging range by range itself."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0081_journal_references")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_blocks_put"), sql_file("greenledger_transfer")],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
