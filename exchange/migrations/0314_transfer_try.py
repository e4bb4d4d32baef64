"""Load ``greenledger_transfer_try``: one transfer of a group committed together, in a subtransaction of its own."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0313_order_batch")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_transfer_try")],
            reverse_sql="DROP FUNCTION IF EXISTS greenledger_transfer_try",
        ),
    ]
