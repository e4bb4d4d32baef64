"""``greenledger_journal_open`` and ``greenledger_audit_record`` in PL/pgSQL: the same statements, with their
plans kept per connection instead of planned at every call (every entry and every event goes through them)."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0082_blocks_put")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_journal_open"), sql_file("greenledger_audit_record")],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
