"""Loads of one calendar at the same time take turns: one loads, the others find it loaded; nothing fails."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from exchange.models import AuditEvent, CalendarDay, CalendarYear
from exchange.services.calendar import calendar_year_load
from tests.helpers.concurrency import attempt, run_workers

pytestmark = pytest.mark.django_db(transaction=True)


def test_four_loads_of_a_new_calendar_at_once_load_it_once():
    outcomes = run_workers(
        4, lambda i: [attempt(lambda: calendar_year_load(actor=Actor.system(f"w{i}"), code="CN", year=2026))]
    )

    assert outcomes == ["ok"] * 4
    assert CalendarYear.objects.get().revision == 1
    assert CalendarDay.objects.count() == 39
    assert AuditEvent.objects.filter(action="calendar.load").count() == 1


def test_four_loads_of_a_new_year_of_a_known_calendar_at_once_load_it_once():
    calendar_year_load(actor=Actor.system("setup"), code="CN", year=2026)
    CalendarDay.objects.all().delete()  # the calendar stays; its year is gone, as before a new year's load
    CalendarYear.objects.all().delete()
    events = AuditEvent.objects.count()

    outcomes = run_workers(
        4, lambda i: [attempt(lambda: calendar_year_load(actor=Actor.system(f"w{i}"), code="CN", year=2026))]
    )

    assert outcomes == ["ok"] * 4
    assert CalendarDay.objects.count() == 39
    assert AuditEvent.objects.count() == events + 1
