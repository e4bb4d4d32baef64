"""Many audit events in one statement: ``greenledger_audit_records`` (the matching engine's batches), the same
events ``greenledger_audit_record`` writes one at a time."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0250_pledge_cash_collateral")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_audit_records")],
            reverse_sql="DROP FUNCTION IF EXISTS greenledger_audit_records"
            "(timestamptz[], bigint[], bigint[], text[], text[], text[], text[], text[], text[], bigint)",
        )
    ]
