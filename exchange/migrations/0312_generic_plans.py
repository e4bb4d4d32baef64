"""Load again the functions a single transfer runs, with generic plans for their small calls
(``plan_cache_mode``): ``greenledger_transfer``, ``greenledger_blocks_take``, ``greenledger_blocks_put`` (a few
ranges put one at a time), ``greenledger_references_missing`` and the ``greenledger_event_project`` trigger."""

from django.db import migrations

from exchange.sql import sql_file

FUNCTIONS = [
    "greenledger_blocks_take",
    "greenledger_blocks_put",
    "greenledger_references_missing",
    "greenledger_event_project",
    "greenledger_transfer",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0310_balances_post")]

    operations = [
        migrations.RunSQL(sql=[sql_file(name) for name in FUNCTIONS], reverse_sql=migrations.RunSQL.noop),
    ]
