"""The trades behind an account's settlement lines: each trade's units leg and cash leg, and its fee.

A settlement posts one line per account and asset for the whole batch (its net change), and a buy drawing on
unsettled sale proceeds posts the cash of those sales early (``exchange.services.proceeds``). The statement
shows, under each such line, the trades it is made of, read for a whole page of lines in two statements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import connection

from core.money import fen_to_str
from exchange.bulk import pg_array
from exchange.models import AssetKind, Posting, ProceedsAdvance, SettlementBatch, TradeSettlement, TransactionKind

Leg = dict[str, Any]


def _signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + fen_to_str(fen)


def trade_legs(account_id: int, postings: Iterable[Posting]) -> dict[int, list[Leg]]:
    """For each settlement posting of the account (by posting id): the trades it settles or pays early, oldest
    first, each with ``units`` (signed tonnes this entry moved), ``cash`` (signed fen to or from the account in
    this entry) and ``fee`` (the account's fee in this entry). A units line lists the trades of its asset; a
    cash line lists them all."""
    lines = [p for p in postings if p.transaction.kind == TransactionKind.SETTLEMENT]
    if not lines:
        return {}
    txns = pg_array(sorted({p.transaction_id for p in lines}), "bigint")
    legs: dict[int, list[Leg]] = defaultdict(list)  # transaction -> legs
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT sb.transaction_id, t.id, a.code, s.account_id = %s, t.quantity, t.price_fen, t.turnover_fen,
                   t.buyer_fee_fen, t.seller_fee_fen,
                   COALESCE((SELECT sum(p.amount_fen) FROM {ProceedsAdvance._meta.db_table} p
                              WHERE p.trade_id = t.id), 0)::bigint
              FROM {SettlementBatch._meta.db_table} sb
              JOIN {TradeSettlement._meta.db_table} ts ON ts.batch_id = sb.id
              JOIN exchange_trade t ON t.id = ts.trade_id
              JOIN exchange_order b ON b.id = t.buy_order_id
              JOIN exchange_order s ON s.id = t.sell_order_id
              JOIN exchange_asset a ON a.id = t.asset_id
             WHERE sb.transaction_id = ANY(%s::bigint[]) AND (b.account_id = %s OR s.account_id = %s)
             ORDER BY t.id
            """,
            [account_id, txns, account_id, account_id],
        )
        for txn, trade, code, selling, qty, price, turnover, buyer_fee, seller_fee, advanced in cursor.fetchall():
            fee = seller_fee if selling else buyer_fee
            cash = turnover - seller_fee - advanced if selling else -(turnover + buyer_fee - advanced)
            legs[txn].append(_leg(trade, code, selling, qty, price, turnover, -qty if selling else qty, cash, fee))
        cursor.execute(
            f"""
            SELECT p.transaction_id, t.id, a.code, p.account_id = %s, t.quantity, t.price_fen, t.turnover_fen,
                   sum(p.amount_fen)::bigint
              FROM {ProceedsAdvance._meta.db_table} p
              JOIN exchange_trade t ON t.id = p.trade_id
              JOIN exchange_order b ON b.id = t.buy_order_id
              JOIN exchange_asset a ON a.id = t.asset_id
             WHERE p.transaction_id = ANY(%s::bigint[]) AND (p.account_id = %s OR b.account_id = %s)
             GROUP BY 1, 2, 3, 4, 5, 6, 7
             ORDER BY t.id
            """,
            [account_id, txns, account_id, account_id],
        )
        for txn, trade, code, selling, qty, price, turnover, amount in cursor.fetchall():
            legs[txn].append(_leg(trade, code, selling, qty, price, turnover, 0, amount if selling else -amount, 0))
    out: dict[int, list[Leg]] = {}
    for p in lines:
        entry = legs.get(p.transaction_id, [])
        cash_line = p.asset.kind == AssetKind.CASH
        out[p.pk] = [leg for leg in entry if cash_line or (leg["asset"] == p.asset.code and leg["units"])]
    return out


def _leg(
    trade: int, code: str, selling: bool, qty: int, price: int, turnover: int, units: int, cash: int, fee: int
) -> Leg:
    return {
        "trade": trade,
        "asset": code,
        "side": "sell" if selling else "buy",
        "quantity": qty,
        "price": fen_to_str(price),
        "turnover": fen_to_str(turnover),
        "units": units,
        "cash": _signed(cash),
        "fee": fen_to_str(fee),
    }


__all__ = ["trade_legs"]
