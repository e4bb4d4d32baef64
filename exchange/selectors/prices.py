"""Prices, in integer fen per tonne: closes, previous closes and averages over trades.

``DailyPrice`` rows are written by the exchange at each close (``exchange.services.day_close.day_close``);
these selectors are what valuation (pledges), penalties (compliance) and price bands read.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, overload

from django.db.models import Sum

from exchange.models import Asset, DailyPrice, MarketRules, OrderMode, Trade


def closing_price(asset: Asset, day: date) -> int | None:
    """The close of ``day``, or the latest close before it; None if the asset never had one."""
    row = (
        DailyPrice.objects.filter(asset=asset, day__lte=day)
        .order_by("-day")
        .values_list("close_fen", flat=True)
        .first()
    )
    return row


class HasReference(Protocol):
    @property
    def reference_price_fen(self) -> int: ...


@overload
def previous_close(asset: Asset, day: date, rules: MarketRules | HasReference) -> int: ...
@overload
def previous_close(asset: Asset, day: date, rules: None = None) -> int | None: ...
def previous_close(asset: Asset, day: date, rules: MarketRules | HasReference | None = None) -> int | None:
    """The reference for ``day``'s price bands: the latest close strictly before it, else the listing reference.

    A caller that holds the asset's ``rules`` passes them, which saves reading the reference price again.
    """
    row = (
        DailyPrice.objects.filter(asset=asset, day__lt=day).order_by("-day").values_list("close_fen", flat=True).first()
    )
    if row is not None:
        return row
    if rules is not None:
        return rules.reference_price_fen
    return MarketRules.objects.filter(asset=asset).values_list("reference_price_fen", flat=True).first()


def vwap(asset: Asset, start: date, end: date, *, listing_only: bool = False) -> int | None:
    """Volume-weighted average trade price over ``start <= trading_day <= end`` (rounded half up), or None."""
    trades = Trade.objects.filter(asset=asset, trading_day__gte=start, trading_day__lte=end)
    if listing_only:
        trades = trades.filter(mode=OrderMode.LISTING)
    totals = trades.aggregate(volume=Sum("quantity"), turnover=Sum("turnover_fen"))
    return _rounded_average(totals["turnover"], totals["volume"])


def average_price(asset: Asset, start: date, end: date) -> int | None:
    """The average trading price over a period (all trades, VWAP); the previous close where none traded."""
    price = vwap(asset, start, end)
    return price if price is not None else previous_close(asset, start)


def _rounded_average(turnover: int | None, volume: int | None) -> int | None:
    if not volume:
        return None
    return (2 * int(turnover or 0) + int(volume)) // (2 * int(volume))
