"""Which trades are still unsettled, read without reading the settled history: the one home of that search.

A trade is unsettled while it has no ``TradeSettlement`` row. Every trade of a trading day before the latest
batch's ``settled_before`` (the watermark) is settled, and the database refuses a trade of such a day
(``greenledger_trade_after_watermark``), so every search for unsettled trades (settlement's batch, the
proceeds a buy may draw on, the cash advanced and not yet withdrawable) reads only the trades of the
watermark's day and later, on the trades' ``(asset, trading_day, id)`` index, and its cost follows the days
not yet settled, not the history. See docs/architecture.md, "Settlement's watermark".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.db import connection

from core import clock
from exchange.models import Asset, AssetKind, SettlementBatch, TradeSettlement


@dataclass(frozen=True, slots=True)
class Watermark:
    """``settled_before``: every trade of an earlier trading day is settled (None before the first batch that
    recorded one: nothing is known settled by day). ``instruments``: every asset that trades (not cash), so a
    bounded read walks the trades' index per asset from the watermark's day."""

    settled_before: date | None
    instruments: list[int]

    @property
    def since(self) -> datetime | None:
        """The watermark's first moment (China Standard Time): what is done for an unsettled trade (a proceeds
        advance) is done at or after it, since the trade is of the watermark's day or later."""
        if self.settled_before is None:
            return None
        return datetime.combine(self.settled_before, time.min, tzinfo=clock.MARKET_TZ)


def settlement_watermark() -> Watermark:
    """The latest batch's ``settled_before`` and every asset that trades (few rows). One statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT (SELECT b.settled_before FROM {SettlementBatch._meta.db_table} b
                         WHERE b.settled_before IS NOT NULL ORDER BY b.id DESC LIMIT 1),
                       ARRAY(SELECT a.id FROM {Asset._meta.db_table} a WHERE a.kind <> %s ORDER BY a.id)""",
            [AssetKind.CASH.value],
        )
        row = cursor.fetchone()
    assert row is not None  # one row, always
    return Watermark(row[0], list(row[1]))


def unsettled_trades(mark: Watermark, alias: str = "t") -> tuple[str, list[Any]]:
    """A SQL condition on the trades aliased ``alias``, with its parameters: the trade is unsettled, and (once a
    batch recorded a watermark) of the watermark's day or later, so the read walks only the days not settled."""
    unsettled = f"NOT EXISTS (SELECT 1 FROM {TradeSettlement._meta.db_table} ts WHERE ts.trade_id = {alias}.id)"
    if mark.settled_before is None:
        return unsettled, []
    return (
        f"{unsettled} AND {alias}.asset_id = ANY(%s::bigint[]) AND {alias}.trading_day >= %s",
        [mark.instruments, mark.settled_before],
    )


__all__ = ["Watermark", "settlement_watermark", "unsettled_trades"]
