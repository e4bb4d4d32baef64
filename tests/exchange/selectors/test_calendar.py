"""Working days and trading days from China's 2026 calendar (exchange.selectors.calendar).

The State Council's 2026 notice: National Day 1-7 October off, Sunday 20 September and Saturday 10 October
worked; Mid-Autumn 25-27 September off.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.actors import Actor
from exchange.selectors.calendar import (
    add_working_days,
    calendar_year_summary,
    clear_calendar_cache,
    is_trading_day,
    is_working_day,
    next_trading_day,
    working_days_between,
    year_days,
)
from exchange.services.calendar import calendar_day_set, calendar_year_load

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture
def cn2026():
    loaded = calendar_year_load(actor=SYSTEM, code="CN", year=2026)
    clear_calendar_cache()  # as the load's commit does
    return loaded


def test_twenty_working_days_over_the_national_day_holiday(cn2026):
    # Published on Wednesday 23 September: Mid-Autumn (25-27 Sep) and National Day (1-7 Oct) don't count,
    # Saturday 10 October (a make-up working day) does.
    start = date(2026, 9, 23)
    counted = [
        date(2026, 9, 24),
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
        *(date(2026, 10, d) for d in (12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 26, 27, 28)),
    ]
    assert len(counted) == 20

    end = add_working_days(start, 20)

    assert end == date(2026, 10, 28)
    assert working_days_between(start, end) == 20
    every = [start + timedelta(days=n) for n in range(1, (end - start).days + 1)]
    assert [d for d in every if is_working_day(d)] == counted
    # Monday to Friday alone would have ended the window a week earlier.
    assert working_days_between(start, date(2026, 10, 21)) == 15
    assert add_working_days(end, -20) == start
    assert working_days_between(end, start) == -20
    assert add_working_days(start, 0) == start


def test_a_makeup_saturday_is_a_working_day_but_not_a_trading_day(cn2026):
    for makeup in (date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20)):
        assert (makeup.weekday() >= 5, is_working_day(makeup), is_trading_day(makeup)) == (True, True, False)
    saturday = date(2026, 10, 10)
    assert (is_working_day(saturday), is_trading_day(saturday)) == (True, False)
    # An ordinary Saturday is neither.
    assert (is_working_day(date(2026, 10, 17)), is_trading_day(date(2026, 10, 17))) == (False, False)


def test_a_holiday_is_neither_a_working_nor_a_trading_day(cn2026):
    for holiday in (date(2026, 1, 1), date(2026, 2, 16), date(2026, 4, 6), date(2026, 6, 19), date(2026, 10, 2)):
        assert (is_working_day(holiday), is_trading_day(holiday)) == (False, False)
    assert (is_working_day(date(2026, 10, 8)), is_trading_day(date(2026, 10, 8))) == (True, True)


def test_next_trading_day_skips_holidays_and_makeup_weekends(cn2026):
    assert next_trading_day(date(2026, 9, 30)) == date(2026, 10, 8)
    assert next_trading_day(date(2026, 10, 9)) == date(2026, 10, 12)  # not the make-up Saturday
    assert next_trading_day(date(2026, 2, 13)) == date(2026, 2, 24)  # Spring Festival 15-23 Feb
    assert next_trading_day(date(2026, 11, 25)) == date(2026, 11, 26)


def test_the_year_counts_trading_and_working_days(cn2026):
    summary = calendar_year_summary("cn", 2026)

    assert (summary.trading_days, summary.working_days) == (242, 248)
    assert (len(summary.holidays), len(summary.makeup_workdays)) == (33, 6)


def test_one_query_per_year_then_the_cache(cn2026):
    with CaptureQueriesContext(connection) as queries:
        working = [d for d in (date(2026, 1, 1) + timedelta(days=n) for n in range(365)) if is_working_day(d)]
        next_trading_day(date(2026, 12, 31))  # into 2027: one query more
    assert len(working) == 248
    assert len(queries) == 2


def test_a_change_is_seen_at_once_and_cached_again_after_its_commit(cn2026, django_capture_on_commit_callbacks):
    tuesday = date(2026, 11, 24)
    assert is_working_day(tuesday)  # cached

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        calendar_day_set(actor=SYSTEM, code="CN", day=tuesday, kind="holiday", name_en="Extra day off")
        # Before the commit, the changing transaction reads afresh (and caches nothing it might roll back).
        assert not is_working_day(tuesday)
        assert not is_trading_day(tuesday)

    assert clear_calendar_cache in callbacks
    with CaptureQueriesContext(connection) as queries:
        assert not is_working_day(tuesday)
        assert is_working_day(tuesday + timedelta(days=1))
    assert len(queries) == 1


def test_a_year_without_data_is_monday_to_friday_with_one_warning(cn2026, caplog):
    caplog.set_level(logging.WARNING, logger="greenledger.calendar")

    assert is_working_day(date(2027, 1, 1))  # a Friday; 2027's holidays aren't loaded
    assert is_trading_day(date(2027, 1, 1))
    assert not is_working_day(date(2027, 1, 2))
    assert add_working_days(date(2027, 1, 1), 5) == date(2027, 1, 8)

    warnings = [r for r in caplog.records if r.name == "greenledger.calendar"]
    assert len(warnings) == 1
    assert "no CN calendar data for 2027" in warnings[0].getMessage()
    assert "load_calendar cn 2027" in warnings[0].getMessage()
    assert year_days(2027).loaded is False


def test_an_unknown_calendar_falls_back_too():
    assert year_days(2026, "XX").loaded is False
    assert is_trading_day(date(2026, 10, 2), "XX")  # a Friday, with no data to say it's a holiday
