"""Working days and trading days, from the calendar data (``exchange.models.calendar``).

Two different questions, with different answers on a make-up Saturday:

- a **working day** (工作日) is Monday to Friday unless it is a public holiday, plus the make-up working days
  (调休上班) the State Council moves onto a weekend. Registry deadlines and windows counted in working days
  (a publicity period of 20 working days, say) count make-up days.
- a **trading day** (交易日) is Monday to Friday unless it is a public holiday. China's exchanges don't open on
  make-up weekend days: those are working days for offices, not trading days.

A year's rows are few, so each (calendar, year) is read with one query and kept for this process for
``CACHE_SECONDS``; ``clear_calendar_cache`` (called when a calendar change commits) drops them. A transaction that
has changed calendar rows reads them afresh until it commits, so nobody caches what may be rolled back.

A year with no data loaded falls back to Monday to Friday for both questions and logs a warning once per
process (the market keeps its usual week rather than stopping; the warning says to run
``manage.py load_calendar``). Refusing instead would close every market and fail every deadline the day a
new year starts without its data, which is worse than a week without its holidays for the minutes it takes
to load them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection

from exchange.models import CalendarDay, CalendarYear, DayKind

logger = logging.getLogger("greenledger.calendar")

DEFAULT_CALENDAR = "CN"
CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class YearDays:
    """One calendar year's exceptions to the Monday-to-Friday week."""

    calendar: str
    year: int
    loaded: bool
    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_workdays: frozenset[date] = field(default_factory=frozenset)


_cache: dict[tuple[str, int], tuple[float, YearDays]] = {}
_warned: set[tuple[str, int]] = set()
_local = threading.local()


def clear_calendar_cache() -> None:
    """Forget every cached year (a calendar change has committed, or a test starts)."""
    _cache.clear()
    _warned.clear()
    _local.changed_in = None


def note_calendar_changed() -> None:
    """Called by the calendar services inside the transaction that changes rows: drop the cache now, read
    afresh for the rest of this transaction, and drop the cache again when it commits."""
    from django.db import transaction

    _cache.clear()
    if connection.in_atomic_block:
        _local.changed_in = id(connection.atomic_blocks[0])
    transaction.on_commit(clear_calendar_cache)


def _uncommitted_change() -> bool:
    marker = getattr(_local, "changed_in", None)
    return marker is not None and connection.in_atomic_block and marker == id(connection.atomic_blocks[0])


def year_days(year: int, calendar: str = DEFAULT_CALENDAR) -> YearDays:
    """The year's holidays and make-up working days: one query per (calendar, year), then from the cache."""
    key = (calendar.upper(), year)
    now = time.monotonic()
    fresh = not _uncommitted_change()
    hit = _cache.get(key)
    if fresh and hit is not None and hit[0] > now:
        return hit[1]
    rows = list(CalendarYear.objects.filter(calendar__code=key[0], year=year).values_list("days__day", "days__kind"))
    if rows:
        days = YearDays(
            calendar=key[0],
            year=year,
            loaded=True,
            holidays=frozenset(d for d, kind in rows if kind == DayKind.HOLIDAY),
            makeup_workdays=frozenset(d for d, kind in rows if kind == DayKind.MAKEUP_WORKDAY),
        )
    else:
        days = YearDays(calendar=key[0], year=year, loaded=False)
        if key not in _warned:
            _warned.add(key)
            logger.warning(
                "no %s calendar data for %s: working and trading days are Monday to Friday; "
                "load it with: manage.py load_calendar %s %s",
                key[0],
                year,
                key[0].lower(),
                year,
                extra={"calendar": key[0], "year": year},
            )
    if fresh:
        _cache[key] = (now + CACHE_SECONDS, days)
    return days


def is_working_day(day: date, calendar: str = DEFAULT_CALENDAR) -> bool:
    """Monday to Friday unless a public holiday; a make-up weekend working day is one too."""
    days = year_days(day.year, calendar)
    if day in days.holidays:
        return False
    return day.weekday() < 5 or day in days.makeup_workdays


def is_trading_day(day: date, calendar: str = DEFAULT_CALENDAR) -> bool:
    """Monday to Friday unless a public holiday; never a weekend, make-up working days included."""
    return day.weekday() < 5 and day not in year_days(day.year, calendar).holidays


def add_working_days(start: date, n: int, calendar: str = DEFAULT_CALENDAR) -> date:
    """The day ``n`` working days after ``start`` (before it, for a negative ``n``); ``start`` itself is not
    counted, so a window of 20 working days opened on ``start`` ends on ``add_working_days(start, 20)``.
    ``n == 0`` is ``start``."""
    step = timedelta(days=1 if n >= 0 else -1)
    day, left = start, abs(n)
    while left:
        day += step
        if is_working_day(day, calendar):
            left -= 1
    return day


def working_days_between(a: date, b: date, calendar: str = DEFAULT_CALENDAR) -> int:
    """How many working days lie after ``a`` up to and including ``b`` (negative when ``b`` is before ``a``):
    ``working_days_between(a, add_working_days(a, n)) == n``."""
    if b < a:
        return -working_days_between(b, a, calendar)
    return sum(1 for day in _days(a + timedelta(days=1), b) if is_working_day(day, calendar))


def next_trading_day(day: date, calendar: str = DEFAULT_CALENDAR) -> date:
    """The first trading day after ``day`` (T+1 of a trade on ``day``)."""
    following = day + timedelta(days=1)
    while not is_trading_day(following, calendar):
        following += timedelta(days=1)
    return following


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# --- the published year --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class YearSummary:
    calendar_year: CalendarYear
    holidays: list[CalendarDay]
    makeup_workdays: list[CalendarDay]
    trading_days: int
    working_days: int


def calendar_year_summary(calendar: str, year: int) -> YearSummary | None:
    """A loaded year with its days and counts (what the public API shows); None if it is not loaded."""
    found = CalendarYear.objects.select_related("calendar").filter(calendar__code=calendar.upper(), year=year).first()
    if found is None:
        return None
    days = list(found.days.order_by("day"))
    holidays = {d.day for d in days if d.kind == DayKind.HOLIDAY}
    makeup = {d.day for d in days if d.kind == DayKind.MAKEUP_WORKDAY}
    every = list(_days(date(year, 1, 1), date(year, 12, 31)))
    return YearSummary(
        calendar_year=found,
        holidays=[d for d in days if d.kind == DayKind.HOLIDAY],
        makeup_workdays=[d for d in days if d.kind == DayKind.MAKEUP_WORKDAY],
        trading_days=sum(1 for d in every if d.weekday() < 5 and d not in holidays),
        working_days=sum(1 for d in every if d not in holidays and (d.weekday() < 5 or d in makeup)),
    )
