"""The market's clock. Services ask it the time instead of ``timezone.now()`` so that tests (and
rehearsals) can pin it: ``with pinned(datetime(...)):``. Applies to every thread while pinned."""

from __future__ import annotations

import threading
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from django.utils import timezone

MARKET_TZ = zoneinfo.ZoneInfo("Asia/Shanghai")

_lock = threading.Lock()
_pinned: datetime | None = None


def now() -> datetime:
    return _pinned or timezone.now()


def market_now() -> datetime:
    """Now in China time (sessions and trading days are Asia/Shanghai)."""
    return now().astimezone(MARKET_TZ)


def trading_day(moment: datetime | None = None) -> date:
    return (moment or now()).astimezone(MARKET_TZ).date()


@contextmanager
def pinned(moment: datetime) -> Iterator[datetime]:
    """Pin the clock at ``moment`` (timezone-aware) for the duration of the block."""
    global _pinned
    if moment.tzinfo is None:
        raise ValueError("pin the clock with a timezone-aware datetime")
    with _lock:
        previous, _pinned = _pinned, moment
    try:
        yield moment
    finally:
        with _lock:
            _pinned = previous


def set_pinned(moment: datetime | None) -> None:
    """Pin (or, with None, unpin) without a block: for fixtures that advance time step by step."""
    global _pinned
    with _lock:
        _pinned = moment


def local_iso(moment: datetime) -> str:
    """A time as every answer writes it, CSV and JSON alike: ISO 8601 in China Standard Time with the offset
    (``2026-12-02T17:18:05.123456+08:00``), never UTC's ``+00:00``."""
    return moment.astimezone(MARKET_TZ).isoformat()
