"""Settlement marks trades in a narrow link table instead of updating them; trades become immutable.

``TradeSettlement`` (trade -> batch, primary key the trade) replaces ``Trade.settlement_batch``. Settling
100,000 trades inserts 100,000 two-column rows instead of updating 100,000 wide rows under seven indexes
(no HOT update was possible), and settle-once is the primary key. The settled trades of the column are
copied over first. The statement trigger that let a trade be updated only to settle it
(``greenledger_trade_settle_once``, 0005 and 0018) gives way to a plain refusal of every update; the link
rows are append-only, and their references are checked once per statement
(``exchange/sql/greenledger_trade_settlement.sql``).
"""

import django.db.models.deletion
from django.db import migrations, models

from exchange.sql import sql_file

FORWARD = [
    "INSERT INTO exchange_tradesettlement (trade_id, batch_id) "
    "SELECT id, settlement_batch_id FROM exchange_trade WHERE settlement_batch_id IS NOT NULL",
    "DROP TRIGGER IF EXISTS exchange_trade_settle_once ON exchange_trade",
    "DROP FUNCTION IF EXISTS greenledger_trade_settle_once()",
    "CREATE TRIGGER exchange_trade_append_only BEFORE UPDATE ON exchange_trade "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()",
    "CREATE TRIGGER exchange_tradesettlement_append_only BEFORE UPDATE OR DELETE ON exchange_tradesettlement "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()",
    sql_file("greenledger_trade_settlement"),
    "CREATE TRIGGER exchange_tradesettlement_refs AFTER INSERT ON exchange_tradesettlement "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION greenledger_trade_settlement_refs()",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0083_posting_functions_plpgsql")]

    operations = [
        migrations.CreateModel(
            name="TradeSettlement",
            fields=[
                (
                    "trade",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="settlement",
                        serialize=False,
                        to="exchange.trade",
                    ),
                ),
                (
                    "batch",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="trade_settlements",
                        to="exchange.settlementbatch",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveIndex(model_name="trade", name="trade_unsettled_idx"),
        migrations.RemoveField(model_name="trade", name="settlement_batch"),
    ]
