"""PostgreSQL guards for pledge records: valuations, margin calls and the collateral each hold froze
are append-only (the trigger function of 0002 refuses UPDATE and DELETE)."""

from django.db import migrations

from core.db import PostgresOnlySQL

APPEND_ONLY_TABLES = ["exchange_pledgevaluation", "exchange_margincall", "exchange_pledgecollateral"]

FORWARD = [
    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()"
    for table in APPEND_ONLY_TABLES
]

BACKWARD = [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY_TABLES]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0011_pledges")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
