"""When a market trades: a rulebook mode's sessions on the days its calendar opens, and when a trading day is over.

A session belongs to its trading day (China Standard Time); ``00:00-24:00`` ends at the next midnight. The
rulebook mode of an order says its sessions (``exchange.services.instrument_rules.InstrumentRules.sessions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from core import clock
from exchange.models import Rulebook
from exchange.selectors.calendar import is_trading_day


def parse_sessions(text: str) -> list[tuple[time, time]]:
    sessions = []
    for part in text.split(","):
        start, _, end = part.strip().partition("-")
        begin = time.fromisoformat(start.strip())
        finish = time.max if end.strip() == "24:00" else time.fromisoformat(end.strip())
        sessions.append((begin, finish))
    return sessions


@dataclass(frozen=True)
class Sessions:
    """When a mode trades: its sessions, on the days its rulebook's calendar opens."""

    sessions: str
    trading_days: str = "calendar"
    calendar_code: str = "CN"


def session_open(rules: Any, moment: datetime) -> bool:
    return session_end(rules, moment) is not None


def session_end(rules: Any, moment: datetime) -> datetime | None:
    """When the session open at ``moment`` ends (the latest end, should sessions overlap); None when the
    market is closed then. A session belongs to its trading day: 00:00-24:00 ends at the next midnight.
    ``rules`` has ``sessions``, ``trading_days`` and (optionally) ``calendar_code``: a ``Sessions``."""
    local = moment.astimezone(clock.MARKET_TZ)
    if not rules.sessions:
        return None
    calendar = getattr(rules, "calendar_code", "CN") or "CN"
    if rules.trading_days == "weekdays" and local.weekday() >= 5:
        return None
    if rules.trading_days == "calendar" and not is_trading_day(local.date(), calendar):
        return None
    now = local.time()
    ends = [end for start, end in parse_sessions(rules.sessions) if start <= now < end]
    if not ends:
        return None
    end = max(ends)
    if end == time.max:  # 24:00
        return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=clock.MARKET_TZ)
    return datetime.combine(local.date(), end, tzinfo=clock.MARKET_TZ)


def day_closed(rulebook: Rulebook, day: date, moment: datetime) -> bool:
    """Whether the market's trading day ``day`` is over at ``moment``: a past day, or today after its last
    session of any mode (an instrument trading 00:00-24:00 closes at midnight)."""
    local = moment.astimezone(clock.MARKET_TZ)
    if day < local.date():
        return True
    if day > local.date():
        return False
    ends = [end for mode in rulebook.modes.all() for _, end in parse_sessions(mode.sessions)]
    return bool(ends) and local.time() >= max(ends)


def session_ended(rules: Any, placed: datetime, moment: datetime) -> bool:
    """Whether the session an order placed at ``placed`` trades in has ended by ``moment``. An order placed
    when no session was open (the rules changed since) has no session left."""
    end = session_end(rules, placed)
    return end is None or end <= moment
