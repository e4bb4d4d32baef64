"""Public daily quotes per market and instrument: open, high, low, close, VWAP, volume and turnover per trading
mode, as China's exchanges publish them to everyone. Computed from the day's trades in two statements; the
close is the day's official close (``DailyPrice``) once recorded, else the last trade's price (not final)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Max, Min, Sum

from core import clock
from exchange.models import DailyPrice, Trade


@dataclass
class Quote:
    market: str
    asset: str
    day: date
    open_fen: int
    high_fen: int
    low_fen: int
    close_fen: int
    final: bool
    vwap_fen: int
    volume: int
    turnover_fen: int
    trades: int
    by_mode: dict[str, dict[str, int]] = field(default_factory=dict)  # mode -> {"volume", "turnover_fen"}


def daily_quotes(*, day: date | None = None, market: str | None = None, asset: str | None = None) -> list[Quote]:
    day = day or clock.trading_day()
    trades = Trade.objects.filter(trading_day=day)
    if market:
        trades = trades.filter(asset__market__code=market)
    if asset:
        trades = trades.filter(asset__code=asset)
    rows = (
        trades.values("asset_id", "asset__code", "asset__market__code", "trading_mode")
        .annotate(
            v=Sum("quantity"),
            t=Sum("turnover_fen"),
            n=Count("id"),
            hi=Max("price_fen"),
            lo=Min("price_fen"),
            first=Min("id"),
            last=Max("id"),
        )
        .order_by("asset__code", "trading_mode")
    )
    per_asset: dict[int, dict] = {}
    for r in rows:
        q = per_asset.setdefault(
            r["asset_id"],
            {
                "market": r["asset__market__code"] or "",
                "asset": r["asset__code"],
                "v": 0,
                "t": 0,
                "n": 0,
                "hi": r["hi"],
                "lo": r["lo"],
                "first": r["first"],
                "last": r["last"],
                "modes": {},
            },
        )
        q["v"] += r["v"]
        q["t"] += r["t"]
        q["n"] += r["n"]
        q["hi"], q["lo"] = max(q["hi"], r["hi"]), min(q["lo"], r["lo"])
        q["first"], q["last"] = min(q["first"], r["first"]), max(q["last"], r["last"])
        q["modes"][r["trading_mode"]] = {"volume": r["v"], "turnover_fen": r["t"], "trades": r["n"]}
    ends = {q["first"] for q in per_asset.values()} | {q["last"] for q in per_asset.values()}
    prices = dict(Trade.objects.filter(pk__in=ends).values_list("pk", "price_fen"))
    closes = dict(DailyPrice.objects.filter(day=day, asset_id__in=per_asset).values_list("asset_id", "close_fen"))
    quotes = []
    for asset_id, q in per_asset.items():
        final = asset_id in closes
        quotes.append(
            Quote(
                market=q["market"],
                asset=q["asset"],
                day=day,
                open_fen=prices[q["first"]],
                high_fen=q["hi"],
                low_fen=q["lo"],
                close_fen=closes.get(asset_id, prices[q["last"]]),
                final=final,
                vwap_fen=(2 * q["t"] + q["v"]) // (2 * q["v"]),
                volume=q["v"],
                turnover_fen=q["t"],
                trades=q["n"],
                by_mode=q["modes"],
            )
        )
    return quotes


__all__ = ["Quote", "daily_quotes"]
