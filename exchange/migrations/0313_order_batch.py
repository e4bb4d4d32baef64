"""Load ``greenledger_order_batch``: the matching engine's batch (holds, balances, orders, trades, the resting
orders' fills and the audit events) written in one statement; and ``greenledger_event_concerned`` again, which
runs no query for what a route doesn't use and reads an order's participant with a statement whose plan it keeps
(every order placed passes there)."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0312_generic_plans")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_order_batch"), sql_file("greenledger_event_concerned")],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
