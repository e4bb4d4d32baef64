"""The day close: each listed instrument's daily prices (OHLCV) and close, recorded once per trading day.

The close is the VWAP of the day's listing trades, else the previous close; the bands of the next day are
drawn around it (``exchange.selectors.prices``).
"""

from __future__ import annotations

from datetime import date

from django.utils.translation import gettext

from accounts.actors import Actor
from core import clock
from core.money import fen_to_str
from exchange.models import Asset, DailyPrice
from exchange.selectors.market import day_trades
from exchange.selectors.prices import previous_close, vwap
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.instrument_rules import NotTradable


@service
def day_close(*, asset: Asset, day: date | None = None, actor: Actor | None = None) -> DailyPrice:
    """Record the day's OHLCV and close: the VWAP of its listing trades, else the previous close.

    Idempotent: a day is closed once.
    """
    actor = actor or Actor.system("day-close")
    day = day or clock.trading_day()
    existing = DailyPrice.objects.filter(asset=asset, day=day).first()
    if existing is not None:
        mark_unchanged()
        return existing
    stats = day_trades(asset, day)
    listing_close = vwap(asset, day, day, listing_only=True)
    if listing_close is not None:
        close, from_trades = listing_close, True
    else:
        reference = previous_close(asset, day)
        if reference is None:
            raise NotTradable(gettext("The asset has no close and no reference price."), details={"asset": asset.code})
        close, from_trades = reference, False
    row = DailyPrice.objects.create(
        asset=asset,
        day=day,
        open_fen=stats.open_fen,
        high_fen=stats.high_fen,
        low_fen=stats.low_fen,
        close_fen=close,
        volume=stats.volume,
        turnover_fen=stats.turnover_fen,
        trades=stats.trades,
        close_from_trades=from_trades,
        computed_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="market.close",
        obj=row,
        payload={
            "asset": asset.code,
            "day": day,
            "close": fen_to_str(close),
            "from_trades": from_trades,
            "volume": row.volume,
            "trades": stats.trades,
        },
    )
    return row


def listed_assets() -> list[Asset]:
    return list(Asset.objects.filter(rules__isnull=False).order_by("pk"))
