"""The rulebook in effect: the one way code reads a market's rules (``exchange.models.markets``).

A market's rulebook versions each start on their ``effective_from`` day, China Standard Time; the version in
effect on a day is the latest one that started on or before it. Its trading modes come prefetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from core import clock
from exchange.errors import RulebookNotFound
from exchange.models import Asset, Market, Rulebook, TradingMode


def market_of(asset_or_market: Asset | Market | str) -> Market | None:
    if isinstance(asset_or_market, Market):
        return asset_or_market
    if isinstance(asset_or_market, Asset):
        return asset_or_market.market if asset_or_market.market_id else None
    return Market.objects.filter(code=asset_or_market).first()


def rulebook_for(asset_or_market: Asset | Market | str, on: date | None = None) -> Rulebook:
    """The rulebook version in effect on ``on`` (default: today, China Standard Time) for an instrument, a
    market or a market code. Raises ``RulebookNotFound`` (404 ``rulebook_not_found``) when there is none."""
    day = on or clock.trading_day()
    if isinstance(asset_or_market, Asset):
        market_id = asset_or_market.market_id
        label = asset_or_market.code
    elif isinstance(asset_or_market, Market):
        market_id, label = asset_or_market.pk, asset_or_market.code
    else:
        market_id = Market.objects.filter(code=asset_or_market).values_list("pk", flat=True).first()
        label = asset_or_market
    book = None
    if market_id is not None:
        book = (
            Rulebook.objects.filter(market_id=market_id, effective_from__lte=day)
            .select_related("market")
            .prefetch_related("modes")
            .order_by("-effective_from", "-version")
            .first()
        )
    if book is None:
        raise RulebookNotFound(details={"market": label, "on": day.isoformat()})
    return book


def rulebook_latest(market: Market) -> Rulebook | None:
    """A market's latest version (the highest, in effect or not yet), its modes prefetched; None before the
    first. What a new version starts from (``rulebook_publish``, the admin's publish form)."""
    return Rulebook.objects.filter(market=market).prefetch_related("modes").order_by("-version").first()


def block_minimums(asset_codes: Iterable[str], on: date | None = None) -> dict[str, int]:
    """Of these instruments, those whose rulebook in effect enables the block agreement, with the mode's
    minimum size (tonnes). Instruments without a market, a rulebook or the mode are left out."""
    found: dict[str, int] = {}
    for asset in Asset.objects.filter(code__in=list(asset_codes)).select_related("market").order_by("code"):
        try:
            block = rulebook_for(asset, on).mode(TradingMode.BLOCK)
        except RulebookNotFound:
            continue
        if block is not None:
            found[asset.code] = block.min_quantity
    return found


def rulebooks_of(market: Market) -> list[Rulebook]:
    """Every version of a market's rulebook, newest first."""
    return list(Rulebook.objects.filter(market=market).prefetch_related("modes").order_by("-effective_from"))


__all__ = ["block_minimums", "market_of", "rulebook_for", "rulebook_latest", "rulebooks_of"]
