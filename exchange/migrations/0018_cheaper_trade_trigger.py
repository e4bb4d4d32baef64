"""The settle-once trade trigger made cheap for large batches, checking exactly what it checked before.

``greenledger_trade_settle_once`` (0005) looked for a bad row with ``... JOIN ... LIMIT 1``. With no bad row,
the LIMIT led the planner to a nested loop over the two transition tables (it expects to stop at the first
match): settling 100,000 trades compared 10^10 pairs, for minutes. It now takes the smallest bad id with
``min``, which plans as a hash join: the same rows are checked, in one pass.
"""

import importlib

from django.db import migrations

from core.db import PostgresOnlySQL

TRADE_COLUMNS = importlib.import_module("exchange.migrations.0005_trading_invariants").TRADE_COLUMNS
OLD_ROW = ", ".join("o." + c for c in TRADE_COLUMNS)
NEW_ROW = ", ".join("n." + c for c in TRADE_COLUMNS)

FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION greenledger_trade_settle_once() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad bigint;
    BEGIN
        SELECT min(o.id) INTO bad FROM old_trades o JOIN new_trades n ON n.id = o.id
         WHERE o.settlement_batch_id IS NOT NULL OR n.settlement_batch_id IS NULL
            OR ({OLD_ROW}) IS DISTINCT FROM ({NEW_ROW});
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'greenledger: trade % can only be settled once and is otherwise immutable', bad
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
]


def _previous() -> list[str]:
    """The function as 0005 created it (for unapplying)."""
    texts = []
    for module, name in (("exchange.migrations.0005_trading_invariants", "greenledger_trade_settle_once"),):
        for sql in importlib.import_module(module).FORWARD:
            if f"CREATE FUNCTION {name}()" in sql:
                texts.append(sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    return texts


class Migration(migrations.Migration):
    dependencies = [("exchange", "0017_posting_account_index")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=_previous())]
