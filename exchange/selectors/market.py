"""Market data: the order book by price level, the trade tape, daily bars, a participant's orders and trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, Max, Min, QuerySet, Sum

from accounts.actors import Actor
from core import clock
from exchange.models import Asset, DailyPrice, Order, OrderMode, OrderStatus, Side, Trade


@dataclass(frozen=True, slots=True)
class Level:
    price_fen: int
    quantity: int
    orders: int


def order_book(asset: Asset, levels: int = 5, mode: str = OrderMode.LISTING) -> dict[str, list[Level]]:
    """The best ``levels`` price levels on each side: bids highest first, asks lowest first."""
    open_orders = Order.objects.filter(asset=asset, status=OrderStatus.OPEN, mode=mode, trading_mode="continuous")

    def side(name: str, ordering: str) -> list[Level]:
        rows = (
            open_orders.filter(side=name)
            .values("price_fen")
            .annotate(quantity=Sum(F("quantity") - F("filled")), orders=Count("id"))
            .order_by(ordering)[:levels]
        )
        return [Level(r["price_fen"], r["quantity"], r["orders"]) for r in rows]

    return {"bids": side(Side.BUY, "-price_fen"), "asks": side(Side.SELL, "price_fen")}


def trade_tape(asset: Asset) -> QuerySet[Trade]:
    return Trade.objects.filter(asset=asset).order_by("-id")


@dataclass(frozen=True, slots=True)
class Bar:
    day: date
    open_fen: int | None
    high_fen: int | None
    low_fen: int | None
    close_fen: int | None
    volume: int
    turnover_fen: int
    trades: int
    final: bool


@dataclass(frozen=True, slots=True)
class DayTrades:
    """A trading day's trades of one asset: the first, highest, lowest and last price, volume, turnover, count.

    The prices are None on a day without trades. The day's official close is another rule (the VWAP of its
    listing trades, ``exchange.selectors.prices.vwap``); ``last_fen`` is the last trade's price.
    """

    open_fen: int | None
    high_fen: int | None
    low_fen: int | None
    last_fen: int | None
    volume: int
    turnover_fen: int
    trades: int


def day_trades(asset: Asset, day: date) -> DayTrades:
    """The open, high, low, last, volume, turnover and count of ``day``'s trades (two queries when it traded)."""
    stats = Trade.objects.filter(asset=asset, trading_day=day).aggregate(
        volume=Sum("quantity"),
        turnover=Sum("turnover_fen"),
        high=Max("price_fen"),
        low=Min("price_fen"),
        first=Min("id"),
        last=Max("id"),
        count=Count("id"),
    )
    prices = (
        dict(Trade.objects.filter(pk__in=[stats["first"], stats["last"]]).values_list("pk", "price_fen"))
        if stats["first"]
        else {}
    )
    return DayTrades(
        open_fen=prices.get(stats["first"]),
        high_fen=stats["high"],
        low_fen=stats["low"],
        last_fen=prices.get(stats["last"]),
        volume=stats["volume"] or 0,
        turnover_fen=stats["turnover"] or 0,
        trades=stats["count"],
    )


def daily_bars(asset: Asset, start: date, end: date) -> list[Bar]:
    """Closed days from the daily prices, and today's bar so far (not final) if today is in range."""
    bars = [
        Bar(p.day, p.open_fen, p.high_fen, p.low_fen, p.close_fen, p.volume, p.turnover_fen, p.trades, True)
        for p in DailyPrice.objects.filter(asset=asset, day__gte=start, day__lte=end).order_by("day")
    ]
    today = clock.trading_day()
    if start <= today <= end and not any(b.day == today for b in bars):
        t = day_trades(asset, today)
        if t.trades:
            bars.append(
                Bar(today, t.open_fen, t.high_fen, t.low_fen, t.last_fen, t.volume, t.turnover_fen, t.trades, False)
            )
    return bars


def orders_of(actor: Actor) -> QuerySet[Order]:
    queryset = Order.objects.select_related("account", "asset", "hold").order_by("-id")
    return queryset if actor.sees_everything else queryset.filter(participant_id=actor.member_participant_id)


def trades_of(actor: Actor) -> QuerySet[Trade]:
    queryset = Trade.objects.select_related("asset", "buy_order", "sell_order").order_by("-id")
    if actor.sees_everything:
        return queryset
    mine = actor.member_participant_id
    return queryset.filter(buy_order__participant_id=mine) | queryset.filter(sell_order__participant_id=mine)
