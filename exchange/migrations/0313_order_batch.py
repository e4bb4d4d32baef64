"""Load ``greenledger_order_batch``: the matching engine's batch (holds, balances, orders, trades, the resting
orders' fills and the audit events) written in one statement."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0312_generic_plans")]

    operations = [
        migrations.RunSQL(sql=[sql_file("greenledger_order_batch")], reverse_sql=migrations.RunSQL.noop),
    ]
