"""Loading and changing working-day calendars (exchange.services.calendar), the public API, and a market that
trades on the calendar's trading days (the rulebook's trading_days = "calendar")."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, time

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import DomainError
from exchange.models import AuditEvent, Calendar, CalendarDay, CalendarYear
from exchange.selectors.calendar import is_trading_day, is_working_day
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.calendar import (
    DATA_DIR,
    calendar_day_remove,
    calendar_day_set,
    calendar_year_load,
    parse_calendar_data,
)
from exchange.services.sessions import Sessions, session_end
from tests.helpers.ledger import actor_for
from tests.helpers.market import REFERENCE_FEN, make_exchange

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def _rows() -> list[tuple]:
    return list(CalendarDay.objects.order_by("day").values_list("day", "kind", "name_en", "name_zh"))


def _events(prefix: str = "calendar.") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action__startswith=prefix).order_by("seq"))


@pytest.fixture
def cn2026() -> CalendarYear:
    return calendar_year_load(actor=SYSTEM, code="CN", year=2026)


# --- loading -----------------------------------------------------------------------------------------------
def test_loading_the_shipped_year_records_every_day_and_its_source(cn2026):
    assert (cn2026.calendar.code, cn2026.year, cn2026.revision) == ("CN", 2026, 1)
    assert cn2026.source_title.startswith("国务院办公厅关于2026年部分节假日安排的通知")
    assert cn2026.source_published == date(2025, 11, 4)
    makeup = CalendarDay.objects.filter(kind="makeup_workday").order_by("day").values_list("day", flat=True)
    assert list(makeup) == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    holidays = set(CalendarDay.objects.filter(kind="holiday").values_list("day", flat=True))
    assert len(holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert {date(2026, 2, 15), date(2026, 2, 23), date(2026, 10, 1), date(2026, 10, 7)} <= holidays
    assert CalendarDay.objects.get(day=date(2026, 10, 1)).name_zh == "国庆节"
    [event] = _events()
    payload = json.loads(event.payload)
    assert (event.action, payload["calendar"], payload["year"], len(payload["added"])) == (
        "calendar.load",
        "CN",
        "2026",  # canonical JSON writes integers as strings
        39,
    )
    assert payload["calendar_created"] is True


def test_loading_twice_changes_nothing_and_records_no_second_event(cn2026):
    rows, events = _rows(), AuditEvent.objects.count()

    again = calendar_year_load(actor=SYSTEM, code="CN", year=2026)

    assert (again.pk, again.revision) == (cn2026.pk, 1)
    assert _rows() == rows
    assert AuditEvent.objects.count() == events
    assert (Calendar.objects.count(), CalendarYear.objects.count()) == (1, 1)


def test_the_command_loads_once_then_reports_unchanged():
    out = io.StringIO()
    call_command("load_calendar", "cn", "2026", stdout=out)
    events = AuditEvent.objects.count()
    rows = _rows()

    call_command("load_calendar", "cn", "2026", stdout=out)

    assert "33 holidays, 6 make-up working days" in out.getvalue()
    assert out.getvalue().strip().splitlines()[-1].count("unchanged (already loaded)") == 1
    assert AuditEvent.objects.count() == events
    assert _rows() == rows


def test_reloading_puts_back_what_the_file_says_and_records_the_difference(cn2026):
    calendar_day_set(actor=SYSTEM, code="CN", day=date(2026, 11, 24), kind="holiday", name_en="Extra day off")
    calendar_day_remove(actor=SYSTEM, code="CN", day=date(2026, 10, 10))

    reloaded = calendar_year_load(actor=SYSTEM, code="CN", year=2026)

    assert reloaded.revision == 4
    assert not CalendarDay.objects.filter(day=date(2026, 11, 24)).exists()
    assert CalendarDay.objects.get(day=date(2026, 10, 10)).kind == "makeup_workday"
    payload = json.loads(_events()[-1].payload)
    assert (list(payload["added"]), list(payload["removed"]), payload["changed"]) == (
        ["2026-10-10"],
        ["2026-11-24"],
        {},
    )


# --- changes -----------------------------------------------------------------------------------------------
def test_a_change_through_the_service_records_an_audit_event(cn2026):
    registry = make_exchange().market.registry_actor
    tuesday = date(2026, 11, 24)
    assert is_working_day(tuesday)

    entry = calendar_day_set(actor=registry, code="cn", day=tuesday, kind="holiday", name_en="Extra", name_zh="加")

    event = _events()[-1]
    payload = json.loads(event.payload)
    assert (event.action, event.object_type, event.object_id) == ("calendar.day_set", "calendarday", str(entry.pk))
    assert event.actor_user_id == registry.user_id
    assert (payload["day"], payload["before"], payload["after"], payload["revision"]) == (
        "2026-11-24",
        None,
        {"kind": "holiday", "name_en": "Extra", "name_zh": "加"},
        "2",
    )
    assert not is_working_day(tuesday)
    assert CalendarYear.objects.get().revision == 2

    # The same again changes nothing.
    events = AuditEvent.objects.count()
    calendar_day_set(actor=registry, code="CN", day=tuesday, kind="holiday", name_en="Extra", name_zh="加")
    assert AuditEvent.objects.count() == events

    calendar_day_remove(actor=registry, code="CN", day=tuesday)

    event = _events()[-1]
    assert event.action == "calendar.day_remove"
    assert json.loads(event.payload)["before"]["kind"] == "holiday"
    assert is_working_day(tuesday)
    assert CalendarYear.objects.get().revision == 3


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        # A make-up working day on a Wednesday: Monday to Friday are working days already.
        ({"day": date(2026, 11, 25), "kind": "makeup_workday", "name_en": "x"}, "calendar_day_invalid", 400),
        ({"day": date(2026, 11, 28), "kind": "bridge", "name_en": "x"}, "calendar_day_invalid", 400),
        ({"day": date(2026, 11, 28), "kind": "holiday", "name_en": " "}, "calendar_day_invalid", 400),
        ({"day": "2026-02-30", "kind": "holiday", "name_en": "x"}, "calendar_day_invalid", 400),
        ({"day": date(2027, 1, 1), "kind": "holiday", "name_en": "x"}, "calendar_year_not_loaded", 404),
        ({"code": "XX", "day": date(2026, 11, 28), "kind": "holiday", "name_en": "x"}, "calendar_not_found", 404),
    ],
)
def test_refused_changes_change_nothing(cn2026, change, code, status):
    rows, events = _rows(), AuditEvent.objects.count()

    with pytest.raises(DomainError) as refused:
        calendar_day_set(actor=SYSTEM, **{"code": "CN", **change})

    assert (refused.value.code, refused.value.status) == (code, status)
    assert _rows() == rows
    assert AuditEvent.objects.count() == events
    assert CalendarYear.objects.get().revision == 1


def test_removing_a_day_that_has_no_entry_is_refused(cn2026):
    with pytest.raises(DomainError) as refused:
        calendar_day_remove(actor=SYSTEM, code="CN", day=date(2026, 11, 25))
    assert (refused.value.code, refused.value.status) == ("calendar_day_not_found", 404)


def test_only_registry_and_exchange_staff_change_calendars(cn2026):
    market = make_exchange().market
    _, _, holder = market.holder("Entity")
    rows = _rows()

    with pytest.raises(DomainError) as refused:
        calendar_day_set(actor=holder, code="CN", day=date(2026, 11, 24), kind="holiday", name_en="x")

    assert refused.value.code == "wrong_participant_kind"
    exchange = actor_for(market.holder("Exchange", kind=ParticipantKind.EXCHANGE)[0])
    calendar_day_set(actor=exchange, code="CN", day=date(2026, 11, 24), kind="holiday", name_en="x")
    assert len(_rows()) == len(rows) + 1


def test_the_loader_refuses_unknown_calendars_years_and_bad_files(tmp_path):
    for args, code in [
        (("xx", "2026"), "calendar_not_found"),
        (("../cn", "2026"), "calendar_not_found"),
        (("cn", "2031"), "calendar_data_not_found"),
        (("cn", "12026"), "calendar_year_invalid"),
        (("cn", "twenty"), "calendar_year_invalid"),
    ]:
        with pytest.raises(CommandError, match=code):
            call_command("load_calendar", *args, stdout=io.StringIO())
    data = json.loads((DATA_DIR / "cn-2026.json").read_text())
    data["days"][0]["date"] = "2026-13-01"
    bad = tmp_path / "cn-2026.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CommandError, match="calendar_data_invalid"):
        call_command("load_calendar", "cn", "2026", "--file", str(bad), stdout=io.StringIO())
    assert (Calendar.objects.count(), AuditEvent.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["days"].append({"date": "2027-01-01", "kind": "holiday", "name_en": "x"}),
        lambda d: d["days"].append({"date": "2026-10-09", "kind": "makeup_workday", "name_en": "x"}),
        lambda d: d["days"].append(dict(d["days"][0])),
        lambda d: d.pop("source"),
        lambda d: d.update(year="2026"),
    ],
)
def test_a_malformed_data_file_is_refused(damage):
    data = json.loads((DATA_DIR / "cn-2026.json").read_text())
    damage(data)
    with pytest.raises(DomainError) as refused:
        parse_calendar_data(data)
    assert (refused.value.code, refused.value.status) == ("calendar_data_invalid", 400)


# --- the public API ----------------------------------------------------------------------------------------
def test_the_year_is_public(cn2026):
    response = APIClient().get("/api/v1/calendars/CN/2026")

    assert response.status_code == 200
    body = response.json()
    assert (body["calendar"], body["year"], body["trading_days"], body["working_days"]) == ("CN", 2026, 242, 248)
    assert body["source"]["published"] == "2025-11-04"
    assert [d["date"] for d in body["makeup_workdays"]] == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    assert body["holidays"][0] == {
        "date": "2026-01-01",
        "kind": "holiday",
        "name_en": "New Year's Day",
        "name_zh": "元旦",
    }
    assert len(body["holidays"]) == 33
    assert APIClient().get("/api/v1/calendars/cn/2026").json()["calendar"] == "CN"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/calendars/XX/2026", 404, "calendar_not_found"),
        ("/api/v1/calendars/CN/2027", 404, "calendar_year_not_loaded"),
        ("/api/v1/calendars/CN/99999", 400, "calendar_year_invalid"),
        ("/api/v1/calendars/CN/0", 400, "calendar_year_invalid"),
    ],
)
def test_the_api_refuses_with_stable_codes(cn2026, path, status, code):
    response = APIClient().get(path)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


# --- a market on the calendar ------------------------------------------------------------------------------
def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=clock.MARKET_TZ)


def test_no_session_on_a_holiday_or_a_makeup_saturday_for_a_calendar_market(cn2026):
    rules = Sessions(sessions="09:30-11:30,13:00-15:00", trading_days="calendar")

    assert session_end(rules, _at(date(2026, 10, 2))) is None  # National Day, a Friday
    assert session_end(rules, _at(date(2026, 10, 10))) is None  # a make-up Saturday: offices work, no trading
    assert session_end(rules, _at(date(2026, 10, 9))) == _at(date(2026, 10, 9)).replace(hour=11, minute=30)
    # Markets on weekdays trade on the holiday; markets every day, on the Saturday too.
    assert session_end(Sessions(sessions=rules.sessions, trading_days="weekdays"), _at(date(2026, 10, 2)))
    assert session_end(Sessions(sessions=rules.sessions, trading_days="daily"), _at(date(2026, 10, 10)))
    assert (is_working_day(date(2026, 10, 10)), is_trading_day(date(2026, 10, 10))) == (True, False)


def test_an_order_on_a_holiday_is_refused_for_a_calendar_market(cn2026):
    with clock.pinned(_at(date(2026, 11, 25))):
        ex = make_exchange(trading_days="calendar")
        _, account, actor = ex.trader("Seller", units=100)
    assert rulebook_for(ex.cea, date(2026, 11, 25)).trading_days == "calendar"

    with clock.pinned(_at(date(2026, 10, 2))), pytest.raises(DomainError) as refused:
        ex.order(actor, account, "sell", REFERENCE_FEN, 10)
    assert refused.value.code == "market_closed"

    with clock.pinned(_at(date(2026, 10, 9))):
        assert ex.order(actor, account, "sell", REFERENCE_FEN, 10).order.status == "open"


def test_a_rulebook_version_takes_the_calendar_choice(cn2026):
    ex = make_exchange()
    with clock.pinned(_at(date(2026, 11, 25))):
        with pytest.raises(DomainError) as refused:
            ex.rules_change(trading_days="holidays")
        assert refused.value.code == "invalid"
        ex.rules_change(trading_days="calendar")
    assert rulebook_for(ex.cea, date(2026, 11, 25)).trading_days == "calendar"
    assert rulebook_for(ex.cea, date(2026, 11, 24)).trading_days == "weekdays"
