"""A fill, in every trading mode: ``quantity`` of a resting order (the maker) traded against an incoming one (the
taker) at one price. The continuous book (``orders._match``, and the matching engine's batches,
``order_batch.py``), listing picks and block acceptances (``agreements.py``) and the one-way auction's allocation
(``auctions.py``) all fill through ``fill`` and record the fill as a ``Trade`` through ``trade_of``.

A fill charges both orders (quantity filled, turnover, and the fee, charged so that all of an order's fills' fees
sum to one rounding of its whole turnover) and ends an order it fills completely; its trade names the two orders,
the taker's side as the aggressor, the price, quantity, turnover and both fees. A fill moves nothing and touches no
hold: each order's hold keeps reserving what its trades need until the settlement batch consumes both holds and
posts the units, the cash and the fees (``settlement.py``).
"""

from __future__ import annotations

from datetime import datetime

from core import clock
from exchange.bulk import bulk_update
from exchange.models import Asset, Order, OrderStatus, RulebookMode, Side, Trade
from exchange.services.instrument_rules import fee_for

#: A fill as matched: the maker, the price, the quantity, the buyer's fee and the seller's fee (fen).
Fill = tuple[Order, int, int, int, int]

#: The columns of an order a fill changes.
ORDER_FILL_COLUMNS = [
    ("filled", "bigint"),
    ("filled_turnover_fen", "bigint"),
    ("fee_fen", "bigint"),
    ("status", "text"),
    ("end_reason", "text"),
    ("ended_at", "timestamptz"),
]


def charge_fill(order: Order, turnover: int, quantity: int, fee_bp: int) -> int:
    """Record a fill on an order; return its fee, charged so that all fills' fees sum to one rounding."""
    order.filled += quantity
    order.filled_turnover_fen += turnover
    total_fee = fee_for(order.filled_turnover_fen, fee_bp)
    fee, order.fee_fen = total_fee - order.fee_fen, total_fee
    return fee


def fill(
    maker: Order,
    taker: Order,
    quantity: int,
    *,
    price_fen: int,
    mode_rules: RulebookMode | None,
    moment: datetime,
) -> Fill:
    """Fill ``quantity`` of ``maker`` against ``taker`` at ``price_fen``: charge both orders their turnover and the
    fee at their side's rate of the rulebook mode they trade under (none without one), and end at ``moment``
    whichever of them is filled completely."""
    buy, sell = (taker, maker) if taker.side == Side.BUY else (maker, taker)
    turnover = price_fen * quantity
    buyer_fee = charge_fill(buy, turnover, quantity, mode_rules.buyer_fee_bp if mode_rules else 0)
    seller_fee = charge_fill(sell, turnover, quantity, mode_rules.seller_fee_bp if mode_rules else 0)
    for order in (maker, taker):
        if order.remaining == 0:
            order.status, order.end_reason, order.ended_at = OrderStatus.FILLED, "filled", moment
    return maker, price_fen, quantity, buyer_fee, seller_fee


def trade_of(taker: Order, done: Fill, *, asset: Asset, moment: datetime) -> Trade:
    """The trade (not saved) of one of ``taker``'s fills, made at ``moment`` in the maker's mode (the taker trades in
    the same one). It names both orders by id: they are saved before it is built."""
    maker, price, quantity, buyer_fee, seller_fee = done
    buy, sell = (taker, maker) if taker.side == Side.BUY else (maker, taker)
    return Trade(
        asset=asset,
        mode=maker.mode,
        trading_mode=maker.trading_mode,
        buy_order_id=buy.pk,
        sell_order_id=sell.pk,
        aggressor=taker.side,
        price_fen=price,
        quantity=quantity,
        turnover_fen=price * quantity,
        buyer_fee_fen=buyer_fee,
        seller_fee_fen=seller_fee,
        trading_day=clock.trading_day(moment),
        created_at=moment,
    )


def trades_of(order: Order, fills: list[Fill]) -> list[Trade]:
    """The trades (not saved) of an incoming order of the continuous book, made when it was placed."""
    return [trade_of(order, done, asset=order.asset, moment=order.created_at) for done in fills]


def fills_save(trades: list[Trade], orders: list[Order]) -> None:
    """Write the trades and what their fills changed on orders already saved, one statement each."""
    Trade.objects.bulk_create(trades)
    bulk_update(
        Order._meta.db_table,
        ORDER_FILL_COLUMNS,
        [(o.pk, o.filled, o.filled_turnover_fen, o.fee_fen, o.status, o.end_reason, o.ended_at) for o in orders],
    )
