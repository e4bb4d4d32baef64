"""PostgreSQL guards for curable compliance and the rule tables.

- A short obligation may become ``late_complete`` (nothing else of it changes); surrenders are accepted by
  short obligations as well as open ones (``greenledger_obligation_assess_once``, ``greenledger_obligation_open``).
- Allocation rules, allocation inputs, carryover rules and official prices are append-only: a change is a
  new version.
- A deduction decision is applied once and never rewritten (``greenledger_deduction_apply_once``).
"""

from django.db import migrations

from core.db import PostgresOnlySQL
from exchange.sql import sql_file

APPEND_ONLY_TABLES = [
    "exchange_allocationrule",
    "exchange_allocationinput",
    "exchange_carryoverrule",
    "exchange_officialprice",
]

FORWARD = [
    sql_file("greenledger_obligation_assess_once"),
    sql_file("greenledger_obligation_open"),
    sql_file("greenledger_deduction_apply_once"),
    "CREATE TRIGGER exchange_allocationdeduction_apply_once BEFORE UPDATE OR DELETE ON exchange_allocationdeduction "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_deduction_apply_once()",
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()"
        for table in APPEND_ONLY_TABLES
    ],
]

BACKWARD = [
    *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY_TABLES],
    "DROP TRIGGER IF EXISTS exchange_allocationdeduction_apply_once ON exchange_allocationdeduction",
    "DROP FUNCTION IF EXISTS greenledger_deduction_apply_once()",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0110_compliance_cure_and_rules")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
