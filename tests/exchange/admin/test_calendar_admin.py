"""The calendar admin: days are added, changed and deleted through the calendar services, audited; a
refusal changes nothing."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.messages import get_messages

from accounts.actors import Actor
from exchange.models import AuditEvent, CalendarDay, CalendarYear
from exchange.services.calendar import calendar_year_load
from tests.helpers.api import admin_client_for
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    market = make_market()
    calendar_year_load(actor=Actor.system("test"), code="CN", year=2026)
    return admin_client_for(market.registry_actor)


def _actions() -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith="calendar.").order_by("seq").values_list("action", flat=True)
    )


def test_staff_add_change_and_delete_a_day_through_the_services(staff):
    calendar = CalendarYear.objects.get().calendar
    assert staff.get("/admin/exchange/calendarday/").status_code == 200
    assert staff.get(f"/admin/exchange/calendaryear/{CalendarYear.objects.get().pk}/change/").status_code == 200

    added = staff.post(
        "/admin/exchange/calendarday/add/",
        {"calendar": calendar.pk, "day": "2026-11-24", "kind": "holiday", "name_en": "Extra", "name_zh": ""},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    entry = CalendarDay.objects.get(day=date(2026, 11, 24))

    changed = staff.post(
        f"/admin/exchange/calendarday/{entry.pk}/change/",
        {"kind": "holiday", "name_en": "Extra day off", "name_zh": "调休"},
    )
    assert changed.status_code == 302
    assert CalendarDay.objects.get(pk=entry.pk).name_en == "Extra day off"

    deleted = staff.post(f"/admin/exchange/calendarday/{entry.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not CalendarDay.objects.filter(day=date(2026, 11, 24)).exists()
    assert _actions() == ["calendar.load", "calendar.day_set", "calendar.day_set", "calendar.day_remove"]
    assert CalendarYear.objects.get().revision == 4


def test_a_refused_day_changes_nothing(staff):
    calendar = CalendarYear.objects.get().calendar
    days = CalendarDay.objects.count()

    response = staff.post(
        "/admin/exchange/calendarday/add/",
        {"calendar": calendar.pk, "day": "2027-01-01", "kind": "holiday", "name_en": "x", "name_zh": ""},
    )

    assert response.status_code == 302
    assert "calendar_year_not_loaded" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert CalendarDay.objects.count() == days
    assert _actions() == ["calendar.load"]


def test_reloading_a_year_from_the_admin_is_idempotent(staff):
    year = CalendarYear.objects.get()

    response = staff.post(
        "/admin/exchange/calendaryear/", {"action": "reload", "_selected_action": [year.pk]}, follow=True
    )

    assert response.status_code == 200
    assert _actions() == ["calendar.load"]
