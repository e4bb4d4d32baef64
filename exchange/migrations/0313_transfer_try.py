"""Load ``greenledger_transfer_try``: one transfer of a group committed together, in a subtransaction of its own."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0312_generic_plans")]

    operations = [
        migrations.RunSQL(
            sql=[
                # Its answer gained the transaction id (xact): a changed result type is dropped, not replaced.
                "DROP FUNCTION IF EXISTS greenledger_transfer_try",
                sql_file("greenledger_transfer_try"),
            ],
            reverse_sql="DROP FUNCTION IF EXISTS greenledger_transfer_try",
        ),
    ]
