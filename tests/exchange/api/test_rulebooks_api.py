"""Publishing a rulebook version on the API and in the admin: staff only, a new version with an effective date,
audited; a version is never edited, a refusal changes nothing."""

from __future__ import annotations

import json
from datetime import date

import pytest

from accounts.models import ParticipantKind
from core import clock
from exchange.models import AuditEvent, Market, Rulebook
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.markets import markets_install
from tests.factories import ParticipantFactory
from tests.helpers.api import admin_client_for, client_for, error_of
from tests.helpers.ledger import actor_for

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 25)


def _staff(kind: str = ParticipantKind.EXCHANGE):
    return actor_for(ParticipantFactory(kind=kind))


def _pinned():
    return clock.pinned(clock.market_now().replace(year=2026, month=11, day=25, hour=10))


def _form_data(form) -> dict:
    """What a browser posts back for the form as shown (unticked boxes are not sent)."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool) or value is None:
            if value:
                data[name] = "on"
            continue
        data[name] = ",".join(value) if isinstance(value, list) else value
    return data


def test_exchange_staff_publish_a_version_that_governs_from_its_day():
    markets_install()
    api = client_for(_staff())
    body = {"effective_from": "2026-12-01", "changes": {"position_limit_t": 500_000}}
    with _pinned():
        created = api.post("/api/v1/markets/BJ-BEA/rulebooks", body, format="json", HTTP_IDEMPOTENCY_KEY="rb-1")
        again = api.post("/api/v1/markets/BJ-BEA/rulebooks", body, format="json", HTTP_IDEMPOTENCY_KEY="rb-1")
        listed = api.get("/api/v1/markets/BJ-BEA/rulebooks")

    assert created.status_code == 201, created.content
    out = created.json()
    assert (out["market"], out["version"], out["effective_from"], out["position_limit_t"]) == (
        "BJ-BEA",
        2,
        "2026-12-01",
        500_000,
    )
    assert out["in_effect"] is False
    assert sorted(m["mode"] for m in out["modes"]) == ["auction", "block", "continuous"]
    assert again.status_code == 201
    assert again.json() == out
    assert Rulebook.objects.filter(market__code="BJ-BEA").count() == 2
    assert [(v["version"], v["in_effect"]) for v in listed.json()] == [(2, False), (1, True)]
    assert rulebook_for("BJ-BEA", date(2026, 11, 30)).position_limit_t == 1_000_000
    assert rulebook_for("BJ-BEA", date(2026, 12, 1)).position_limit_t == 500_000
    event = AuditEvent.objects.get(action="market.rulebook_publish")
    assert json.loads(event.payload)["changes"] == {"position_limit_t": ["1000000", "500000"]}


def test_new_modes_replace_the_latest_versions_modes():
    markets_install()
    api = client_for(_staff(ParticipantKind.REGISTRY))
    modes = [{"mode": "listing", "sessions": "09:30-11:30", "band_bp": 500, "max_quantity": 9_999}]
    with _pinned():
        created = api.post(
            "/api/v1/markets/CN-CEA/rulebooks", {"effective_from": "2026-11-26", "modes": modes}, format="json"
        )
    assert created.status_code == 201, created.content
    book = rulebook_for("CN-CEA", date(2026, 11, 26))
    assert book.mode_names == ["listing"]
    assert (book.mode("listing").sessions, book.mode("listing").band_bp) == ("09:30-11:30", 500)
    assert rulebook_for("CN-CEA", TODAY).mode("block") is not None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"effective_from": "2026-11-24", "changes": {}}, 400, "invalid"),  # a day already begun
        ({"effective_from": "2026-12-01", "changes": {"no_such_rule": 1}}, 400, "invalid"),
        ({"effective_from": "2026-12-01", "modes": [{"mode": "barter"}]}, 400, "invalid"),
        ({"effective_from": "2026-12-01", "changes": {"lot": 0}}, 400, "invalid"),
    ],
)
def test_invalid_versions_are_refused_and_change_nothing(body, status, code):
    markets_install()
    api = client_for(_staff())
    events = AuditEvent.objects.count()
    with _pinned():
        refused = api.post("/api/v1/markets/CN-CCER/rulebooks", body, format="json")
    assert error_of(refused) == (status, code)
    assert Rulebook.objects.filter(market__code="CN-CCER").count() == 1
    assert AuditEvent.objects.count() == events


def test_only_exchange_or_registry_staff_publish_and_unknown_markets_are_404():
    markets_install()
    trader = client_for(_staff(ParticipantKind.COMPLIANCE_ENTITY))
    with _pinned():
        refused = trader.post("/api/v1/markets/CN-CEA/rulebooks", {"effective_from": "2026-12-01"}, format="json")
        readable = trader.get("/api/v1/markets/CN-CEA/rulebooks")
        unknown = client_for(_staff()).post(
            "/api/v1/markets/XX-NONE/rulebooks", {"effective_from": "2026-12-01"}, format="json"
        )
    assert error_of(refused) == (403, "wrong_participant_kind")
    assert readable.status_code == 200
    assert [v["version"] for v in readable.json()] == [1]
    assert error_of(unknown) == (404, "market_not_found")
    assert Rulebook.objects.count() == 3


def test_the_admin_form_publishes_only_the_values_changed():
    markets_install()
    staff = _staff()
    browser = admin_client_for(staff)
    with _pinned():
        page = browser.get("/admin/exchange/rulebook/publish/BJ-BEA/")
        assert page.status_code == 200
        data = _form_data(page.context["form"])
        data["effective_from"] = "2026-12-01"
        data["large_holder_threshold_t"] = 400_000
        posted = browser.post("/admin/exchange/rulebook/publish/BJ-BEA/", data)
    assert posted.status_code == 302, posted.context["form"].errors if posted.context else posted
    book = Rulebook.objects.get(market__code="BJ-BEA", version=2)
    assert (book.effective_from, book.large_holder_threshold_t) == (date(2026, 12, 1), 400_000)
    assert sorted(book.mode_names) == ["auction", "block", "continuous"]
    event = AuditEvent.objects.get(action="market.rulebook_publish")
    assert json.loads(event.payload)["changes"] == {"large_holder_threshold_t": ["500000", "400000"]}


def test_the_admin_form_shows_a_refusal_and_publishes_nothing():
    markets_install()
    browser = admin_client_for(_staff(ParticipantKind.COMPLIANCE_ENTITY))
    with _pinned():
        page = browser.get("/admin/exchange/rulebook/publish/CN-CEA/")
        data = _form_data(page.context["form"])
        data["effective_from"] = "2026-12-01"
        refused = browser.post("/admin/exchange/rulebook/publish/CN-CEA/", data)
    assert refused.status_code == 200
    assert "wrong_participant_kind" in str(refused.context["form"].non_field_errors())
    assert Market.objects.get(code="CN-CEA").rulebooks.count() == 1


def test_whether_sales_cash_buys_on_the_day_is_published_per_market_with_its_day():
    markets_install()
    api = client_for(_staff())
    body = {"effective_from": "2026-12-01", "changes": {"sale_cash_buys_same_day": False}}
    with _pinned():
        created = api.post("/api/v1/markets/CN-CCER/rulebooks", body, format="json", HTTP_IDEMPOTENCY_KEY="rb-s")
        listed = api.get("/api/v1/markets/CN-CCER/rulebooks")

    assert created.status_code == 201, created.content
    assert created.json()["sale_cash_buys_same_day"] is False
    assert [v["sale_cash_buys_same_day"] for v in listed.json()] == [False, True]
    assert rulebook_for("CN-CCER", date(2026, 11, 30)).sale_cash_buys_same_day is True
    assert rulebook_for("CN-CCER", date(2026, 12, 1)).sale_cash_buys_same_day is False
    assert rulebook_for("CN-CEA", date(2026, 12, 1)).sale_cash_buys_same_day is True  # the other markets keep theirs
    event = AuditEvent.objects.get(action="market.rulebook_publish")
    assert json.loads(event.payload)["changes"] == {"sale_cash_buys_same_day": [True, False]}


def test_the_admin_form_carries_whether_sales_cash_buys_on_the_day():
    markets_install()
    browser = admin_client_for(_staff())
    with _pinned():
        page = browser.get("/admin/exchange/rulebook/publish/BJ-BEA/")
        assert page.context["form"]["sale_cash_buys_same_day"].value() is True  # the latest version's
        data = _form_data(page.context["form"])
        data["effective_from"] = "2026-12-01"
        del data["sale_cash_buys_same_day"]  # the box unticked
        posted = browser.post("/admin/exchange/rulebook/publish/BJ-BEA/", data)
    assert posted.status_code == 302, posted.context["form"].errors if posted.context else posted
    assert Rulebook.objects.get(market__code="BJ-BEA", version=2).sale_cash_buys_same_day is False
    event = AuditEvent.objects.get(action="market.rulebook_publish")
    assert json.loads(event.payload)["changes"] == {"sale_cash_buys_same_day": [True, False]}
