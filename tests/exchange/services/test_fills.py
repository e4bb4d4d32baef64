"""The one fill routine every trading mode uses (exchange.services.fills): what a fill does to the two orders and
the trade it makes. Plain objects, no database: a fill writes nothing itself (``fills_save`` does, and the
trading, agreement and auction tests hold the written rows)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from exchange.models import Asset, Order, OrderMode, OrderStatus, RulebookMode, Side, TradingMode
from exchange.services.fills import fill, trade_of, trades_of

PLACED = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 China time
EVENING = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)  # 01:00 China time, the next day


def _order(pk: int, side: str, quantity: int, price_fen: int, *, trading_mode: str = TradingMode.CONTINUOUS) -> Order:
    return Order(
        pk=pk,
        asset_id=7,
        side=side,
        mode=OrderMode.LISTING,
        trading_mode=trading_mode,
        price_fen=price_fen,
        quantity=quantity,
        trading_day=PLACED.date(),
        created_at=PLACED,
    )


def _fees(buyer_bp: int, seller_bp: int) -> RulebookMode:
    return RulebookMode(
        mode=TradingMode.CONTINUOUS, sessions="09:30-11:30", buyer_fee_bp=buyer_bp, seller_fee_bp=seller_bp
    )


def test_a_fill_charges_both_orders_and_ends_the_one_it_fills():
    maker = _order(1, Side.SELL, 100, 8000)
    taker = _order(2, Side.BUY, 300, 8100)

    done = fill(maker, taker, 100, price_fen=8000, mode_rules=_fees(60, 40), moment=PLACED)

    # 800,000 fen turnover: 0.6 % of it from the buyer, 0.4 % from the seller.
    assert done == (maker, 8000, 100, 4800, 3200)
    assert (maker.filled, maker.filled_turnover_fen, maker.fee_fen) == (100, 800_000, 3200)
    assert (taker.filled, taker.filled_turnover_fen, taker.fee_fen) == (100, 800_000, 4800)
    assert (maker.status, maker.end_reason, maker.ended_at) == (OrderStatus.FILLED, "filled", PLACED)
    assert (taker.status, taker.end_reason, taker.ended_at) == (OrderStatus.OPEN, "", None)


def test_an_orders_fees_over_its_fills_add_up_to_one_rounding_of_its_turnover():
    taker = _order(1, Side.BUY, 3, 100)
    makers = [_order(pk, Side.SELL, 1, 100) for pk in (2, 3, 4)]

    # 0.5 % of a 100-fen fill is half a fen: each alone would round up to 1 fen, 3 in all.
    fees = [fill(m, taker, 1, price_fen=100, mode_rules=_fees(50, 0), moment=PLACED)[3] for m in makers]

    assert fees == [1, 0, 1]
    assert taker.fee_fen == 2  # 0.5 % of 300 fen, rounded half up once
    assert (taker.status, taker.ended_at) == (OrderStatus.FILLED, PLACED)


def test_without_the_modes_rules_a_fill_charges_no_fee():
    maker, taker = _order(1, Side.BUY, 10, 5000), _order(2, Side.SELL, 10, 5000)

    assert fill(maker, taker, 10, price_fen=5000, mode_rules=None, moment=PLACED)[3:] == (0, 0)
    assert (maker.fee_fen, taker.fee_fen) == (0, 0)


def test_the_trade_names_the_buy_and_the_sell_and_the_taker_as_aggressor():
    asset = Asset(pk=7, code="CEA-2024")
    offer = _order(1, Side.SELL, 500, 4000, trading_mode=TradingMode.AUCTION)
    bid = _order(2, Side.BUY, 200, 4500, trading_mode=TradingMode.AUCTION)

    done = fill(offer, bid, 200, price_fen=4200, mode_rules=_fees(10, 20), moment=EVENING)
    trade = trade_of(bid, done, asset=asset, moment=EVENING)

    assert (trade.buy_order_id, trade.sell_order_id, trade.aggressor) == (2, 1, Side.BUY)
    assert (trade.asset, trade.mode, trade.trading_mode) == (asset, OrderMode.LISTING, TradingMode.AUCTION)
    assert (trade.price_fen, trade.quantity, trade.turnover_fen) == (4200, 200, 840_000)
    assert (trade.buyer_fee_fen, trade.seller_fee_fen) == (840, 1680)
    assert (trade.trading_day, trade.created_at) == (date(2026, 12, 3), EVENING)  # the day in China time


def test_an_incoming_orders_trades_are_made_when_it_was_placed():
    asset = Asset(pk=7, code="CEA-2024")
    sell = _order(3, Side.SELL, 50, 6000)
    sell.asset = asset
    buys = [_order(1, Side.BUY, 20, 6100), _order(2, Side.BUY, 40, 6000)]

    fills = [
        fill(b, sell, min(b.remaining, sell.remaining), price_fen=b.price_fen, mode_rules=None, moment=PLACED)
        for b in buys
    ]
    trades = trades_of(sell, fills)

    assert [(t.buy_order_id, t.sell_order_id, t.price_fen, t.quantity, t.aggressor) for t in trades] == [
        (1, 3, 6100, 20, Side.SELL),
        (2, 3, 6000, 30, Side.SELL),
    ]
    assert {(t.trading_day, t.created_at, t.trading_mode) for t in trades} == {
        (PLACED.date(), PLACED, TradingMode.CONTINUOUS)
    }
    assert (sell.status, buys[0].status, buys[1].status) == (OrderStatus.FILLED, OrderStatus.FILLED, OrderStatus.OPEN)
