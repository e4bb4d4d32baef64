"""Market data: the order book by price level, the trade tape, daily bars, a participant's orders and trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, Max, Min, QuerySet, Sum

from accounts.actors import Actor
from exchange import clock
from exchange.models import Asset, DailyPrice, Order, OrderMode, OrderStatus, Side, Trade


@dataclass(frozen=True, slots=True)
class Level:
    price_fen: int
    quantity: int
    orders: int


def order_book(asset: Asset, levels: int = 5, mode: str = OrderMode.LISTING) -> dict[str, list[Level]]:
    """The best ``levels`` price levels on each side: bids highest first, asks lowest first."""
    open_orders = Order.objects.filter(asset=asset, status=OrderStatus.OPEN, mode=mode)

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


def daily_bars(asset: Asset, start: date, end: date) -> list[Bar]:
    """Closed days from the daily prices, and today's bar so far (not final) if today is in range."""
    bars = [
        Bar(p.day, p.open_fen, p.high_fen, p.low_fen, p.close_fen, p.volume, p.turnover_fen, p.trades, True)
        for p in DailyPrice.objects.filter(asset=asset, day__gte=start, day__lte=end).order_by("day")
    ]
    today = clock.trading_day()
    if start <= today <= end and not any(b.day == today for b in bars):
        trades = Trade.objects.filter(asset=asset, trading_day=today)
        stats = trades.aggregate(
            volume=Sum("quantity"),
            turnover=Sum("turnover_fen"),
            high=Max("price_fen"),
            low=Min("price_fen"),
            first=Min("id"),
            last=Max("id"),
        )
        if stats["first"]:
            prices = dict(Trade.objects.filter(pk__in=[stats["first"], stats["last"]]).values_list("pk", "price_fen"))
            bars.append(
                Bar(
                    today,
                    prices[stats["first"]],
                    stats["high"],
                    stats["low"],
                    prices[stats["last"]],
                    stats["volume"],
                    stats["turnover"],
                    trades.count(),
                    False,
                )
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
