"""PostgreSQL guards for the market's records.

- Settlement batches and daily prices are append-only.
- A trade is never deleted and never changed, except that an unsettled trade is settled once
  (``settlement_batch_id`` set from NULL). The check is one set-wise statement trigger, so settling a
  batch of many trades costs one check, not one per trade.
"""

from django.db import migrations

from core.db import PostgresOnlySQL

TRADE_COLUMNS = (
    "asset_id", "mode", "buy_order_id", "sell_order_id", "aggressor", "price_fen", "quantity",
    "turnover_fen", "buyer_fee_fen", "seller_fee_fen", "trading_day", "created_at",
)

FORWARD = [
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()"
        for table in ("exchange_settlementbatch", "exchange_dailyprice")
    ],
    "CREATE TRIGGER exchange_trade_no_delete BEFORE DELETE ON exchange_trade "
    "FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()",
    f"""
    CREATE FUNCTION greenledger_trade_settle_once() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad bigint;
    BEGIN
        SELECT o.id INTO bad FROM old_trades o JOIN new_trades n ON n.id = o.id
         WHERE o.settlement_batch_id IS NOT NULL OR n.settlement_batch_id IS NULL
            OR ({", ".join("o." + c for c in TRADE_COLUMNS)}) IS DISTINCT FROM ({", ".join("n." + c for c in TRADE_COLUMNS)})
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'greenledger: trade % can only be settled once and is otherwise immutable', bad
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER exchange_trade_settle_once AFTER UPDATE ON exchange_trade "
    "REFERENCING OLD TABLE AS old_trades NEW TABLE AS new_trades "
    "FOR EACH STATEMENT EXECUTE FUNCTION greenledger_trade_settle_once()",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS exchange_trade_settle_once ON exchange_trade",
    "DROP FUNCTION IF EXISTS greenledger_trade_settle_once()",
    "DROP TRIGGER IF EXISTS exchange_trade_no_delete ON exchange_trade",
    "DROP TRIGGER IF EXISTS exchange_dailyprice_append_only ON exchange_dailyprice",
    "DROP TRIGGER IF EXISTS exchange_settlementbatch_append_only ON exchange_settlementbatch",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0004_trading")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
