"""A serial block's state agrees with its hold's kind: frozen under a judicial freeze, held under any other."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0100_registry_rules")]

    operations = [
        migrations.RunSQL(
            sql_file("greenledger_block_hold_state"),
            reverse_sql="ALTER TABLE exchange_serialblock DROP CONSTRAINT IF EXISTS block_hold_state_fk;",
        ),
    ]
