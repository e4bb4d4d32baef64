"""/api/v1/compliance/...: permissions, surrenders, emissions, obligations (JSON and CSV), statements."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from accounts.models import ParticipantKind
from exchange.models import (
    AccountKind,
    AllocationEntry,
    ComplianceYear,
    Surrender,
    VerifiedEmission,
)
from exchange.services.compliance import compliance_deadlines_run
from tests.factories import DailyPriceFactory, ParticipantFactory
from tests.helpers.api import client_for, error_of
from tests.helpers.compliance import Cycle, make_cycle
from tests.helpers.ledger import actor_for, balance, snapshot, system

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle() -> Cycle:
    return make_cycle(2024)


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def _surrender_body(entity, *items, year=2024):
    return {
        "account": entity.account.number,
        "year": year,
        "items": [{"asset": a, "quantity": q} for a, q in items],
    }


# --- surrender -------------------------------------------------------------------------------------------
def test_an_entity_surrenders_and_reads_it_back(cycle):
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.market.give(entity.account, 150)
    client = client_for(entity.actor)
    body = _surrender_body(entity, ("CEA-2024", 60))

    response = client.post("/api/v1/compliance/surrenders", body, format="json", HTTP_IDEMPOTENCY_KEY="s-1")
    again = client.post("/api/v1/compliance/surrenders", body, format="json", HTTP_IDEMPOTENCY_KEY="s-1")

    assert response.status_code == 201, response.json()
    got = response.json()
    assert {k: got[k] for k in ("year", "entity", "account", "quantity", "ccer_quantity", "items")} == {
        "year": 2024,
        "entity": entity.participant.pk,
        "account": entity.account.number,
        "quantity": 60,
        "ccer_quantity": 0,
        "items": [{"asset": "CEA-2024", "quantity": 60}],
    }
    sink = system(AccountKind.SURRENDER)
    assert [
        (r["first"], r["last"], r["destination"], r["state"]) for r in got["transaction"]["serial_ranges"]
    ] == [(1, 60, sink.number, "surrendered")]
    assert again.json() == got
    assert Surrender.objects.count() == 1
    assert balance(entity.account, cycle.market.cea) == (90, 0)
    assert [s["id"] for s in client.get("/api/v1/compliance/surrenders").json()["results"]] == [got["id"]]


def test_an_entity_can_not_surrender_from_another_entitys_account(cycle):
    victim = cycle.entity("Jingneng", emissions=100)
    thief = cycle.entity("Shougang", emissions=100)
    cycle.market.give(victim.account, 100)
    client = client_for(thief.actor)
    before = snapshot()

    response = client.post(
        "/api/v1/compliance/surrenders", _surrender_body(victim, ("CEA-2024", 10)), format="json"
    )

    assert error_of(response) == (404, "account_not_found")
    assert snapshot() == before
    assert client.get("/api/v1/compliance/surrenders").json()["results"] == []


@pytest.mark.parametrize(
    ("items", "status", "code"),
    [
        ((("CEA-2024", 101),), 409, "exceeds_remaining_obligation"),
        ((("CCER-FOREST-1-2023", 6),), 409, "ccer_limit_exceeded"),
        ((("CEA-2025", 1),), 409, "vintage_after_compliance_year"),
        ((("CEA-2024", 0),), 400, "min_value"),
        ((("CEA-1999", 1),), 400, "unknown_asset"),
    ],
)
def test_surrender_refusals_on_the_api(cycle, items, status, code):
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.ccer(entity, 10)
    from exchange.services.issuance import cea_vintage_create

    cycle.market.give(entity.account, 200)
    cycle.market.give(entity.account, 5, asset=cea_vintage_create(actor=cycle.registry, vintage=2025))
    client = client_for(entity.actor)
    before = snapshot()

    response = client.post("/api/v1/compliance/surrenders", _surrender_body(entity, *items), format="json")

    assert error_of(response) == (status, code)
    assert snapshot() == before


# --- emissions and years ---------------------------------------------------------------------------------
def test_a_verifier_records_emissions_and_an_entity_can_not(cycle):
    entity = cycle.entity("Jingneng")
    body = {
        "entity": entity.participant.pk,
        "year": 2024,
        "quantity": 1200,
        "report_reference": "VR-2024-001",
    }

    refused = client_for(entity.actor).post("/api/v1/compliance/emissions", body, format="json")
    recorded = client_for(cycle.verifier).post("/api/v1/compliance/emissions", body, format="json")
    corrected = client_for(cycle.verifier).post(
        "/api/v1/compliance/emissions", body | {"quantity": 1180, "note": "recount"}, format="json"
    )

    assert error_of(refused) == (403, "wrong_participant_kind")
    assert recorded.status_code == 201
    assert {k: recorded.json()[k] for k in ("year", "entity", "version", "quantity", "report_reference")} == {
        "year": 2024,
        "entity": entity.participant.pk,
        "version": 1,
        "quantity": 1200,
        "report_reference": "VR-2024-001",
    }
    assert (corrected.json()["version"], corrected.json()["quantity"]) == (2, 1180)
    assert list(VerifiedEmission.objects.order_by("version").values_list("version", "quantity")) == [
        (1, 1200),
        (2, 1180),
    ]
    mine = client_for(entity.actor).get("/api/v1/compliance/emissions").json()["results"]
    assert [(e["version"], e["quantity"]) for e in mine] == [(2, 1180), (1, 1200)]
    other = cycle.entity("Shougang")
    uncovered = client_for(cycle.verifier).post(
        "/api/v1/compliance/emissions", body | {"entity": other.participant.pk, "year": 2023}, format="json"
    )
    assert error_of(uncovered) == (404, "obligation_not_found")


def test_the_registry_opens_a_year_and_covers_entities(cycle):
    entity = cycle.entity("Jingneng")
    registry = client_for(cycle.registry)

    created = registry.post(
        "/api/v1/compliance/years", {"year": 2025, "deadline": "2026-09-30"}, format="json"
    )
    covered = registry.post(
        "/api/v1/compliance/years/2025/entities", {"entities": [entity.participant.pk]}, format="json"
    )
    refused = client_for(entity.actor).post("/api/v1/compliance/years", {"year": 2026}, format="json")
    bank = ParticipantFactory(kind=ParticipantKind.FINANCIAL_INSTITUTION)
    not_entity = registry.post(
        "/api/v1/compliance/years/2025/entities", {"entities": [bank.pk]}, format="json"
    )

    assert created.status_code == 201
    assert (created.json()["deadline"], created.json()["ccer_limit_bp"]) == ("2026-09-30", 500)
    assert covered.status_code == 201
    assert [(o["entity"]["id"], o["year"], o["status"], o["verified"]) for o in covered.json()] == [
        (entity.participant.pk, 2025, "open", None)
    ]
    assert error_of(refused) == (403, "wrong_participant_kind")
    assert error_of(not_entity) == (409, "not_a_compliance_entity")
    assert error_of(registry.get("/api/v1/compliance/years/2031")) == (404, "compliance_year_not_found")
    assert [y["year"] for y in client_for(entity.actor).get("/api/v1/compliance/years").json()] == [
        2025,
        2024,
    ]


def test_a_refused_take_back_answers_its_code_and_keeps_the_record(cycle):
    entity = cycle.entity("Jingneng")
    registry = client_for(cycle.registry)
    url = f"/api/v1/compliance/obligations/{entity.obligation.pk}/true-up"
    assert registry.post(url, {"approved": 100}, format="json").json()["quantity"] == 100
    from exchange.services.retirement import retirement_create

    retirement_create(
        actor=entity.actor,
        account=entity.account,
        asset=cycle.market.cea,
        quantity=95,
        beneficiary="B",
        reason="R",
    )

    response = registry.post(url, {"approved": 80}, format="json")

    assert error_of(response) == (409, "takeback_units_unavailable")
    assert response.json()["error"]["details"]["shortfall"] == 15
    assert list(AllocationEntry.objects.order_by("pk").values_list("outcome", "quantity", "shortfall")) == [
        ("applied", 100, 0),
        ("refused", 0, 15),
    ]
    assert error_of(client_for(entity.actor).post(url, {"approved": 80}, format="json")) == (
        403,
        "wrong_participant_kind",
    )


# --- obligations, statements, CSV ------------------------------------------------------------------------
@pytest.fixture
def assessed():
    """Year 2023, assessed: Jingneng complete (1000 t), Shougang short by 37 t at 60.76 CNY/t."""
    cycle = make_cycle(2023)
    jingneng = cycle.entity("Jingneng", emissions=1000)
    shougang = cycle.entity("Shougang", emissions=500)
    cycle.market.give(jingneng.account, 1000)
    cycle.market.give(shougang.account, 463)
    cycle.surrender(jingneng, (cycle.market.cea, 1000))
    cycle.surrender(shougang, (cycle.market.cea, 463))
    DailyPriceFactory(asset=cycle.market.cea, day=date(2024, 11, 29), close_fen=6076, close_from_trades=True)
    compliance_deadlines_run(today=date(2025, 1, 1))
    return cycle, jingneng, shougang


def test_obligations_are_filtered_and_entities_see_only_their_own(assessed):
    cycle, jingneng, shougang = assessed
    auditor = actor_for(ParticipantFactory(kind=ParticipantKind.AUDITOR), role="viewer")

    def ids(actor, query=""):
        return [
            o["entity"]["id"]
            for o in client_for(actor).get(f"/api/v1/compliance/obligations{query}").json()["results"]
        ]

    assert sorted(ids(cycle.registry)) == sorted([jingneng.participant.pk, shougang.participant.pk])
    assert sorted(ids(cycle.verifier, "?year=2023")) == sorted(
        [jingneng.participant.pk, shougang.participant.pk]
    )
    assert ids(auditor, "?status=short") == [shougang.participant.pk]
    assert ids(cycle.registry, f"?entity={jingneng.participant.pk}") == [jingneng.participant.pk]
    assert ids(cycle.registry, "?year=2024") == []
    assert ids(jingneng.actor) == [jingneng.participant.pk]
    assert ids(jingneng.actor, f"?entity={shougang.participant.pk}") == []
    short = client_for(shougang.actor).get(f"/api/v1/compliance/obligations/{shougang.obligation.pk}").json()
    assert {
        k: short[k] for k in ("status", "verified", "surrendered", "remaining", "shortfall", "price")
    } == {
        "status": "short",
        "verified": 500,
        "surrendered": 463,
        "remaining": 37,
        "shortfall": 37,
        "price": "60.76",
    }
    assert (short["penalty_min"], short["penalty_max"]) == ("11240.60", "22481.20")
    hidden = client_for(jingneng.actor).get(f"/api/v1/compliance/obligations/{shougang.obligation.pk}")
    assert error_of(hidden) == (404, "obligation_not_found")


def test_obligations_csv_export(assessed):
    cycle, jingneng, shougang = assessed

    rows = _csv(client_for(cycle.registry).get("/api/v1/compliance/obligations?format=csv&year=2023"))
    own = _csv(client_for(shougang.actor).get("/api/v1/compliance/obligations?format=csv"))

    header = [
        "year",
        "entity_id",
        "entity",
        "account",
        "status",
        "verified",
        "allocated",
        "surrendered",
        "ccer_surrendered",
        "remaining",
        "shortfall",
        "price",
        "penalty_min",
        "penalty_max",
    ]
    jingneng_row = [
        "2023",
        str(jingneng.participant.pk),
        "Jingneng",
        jingneng.account.number,
        "complete",
        "1000",
        "0",
        "1000",
        "0",
        "0",
        "0",
        "60.76",
        "0.00",
        "0.00",
    ]
    shougang_row = [
        "2023",
        str(shougang.participant.pk),
        "Shougang",
        shougang.account.number,
        "short",
        "500",
        "0",
        "463",
        "0",
        "37",
        "37",
        "60.76",
        "11240.60",
        "22481.20",
    ]
    assert rows == [header, jingneng_row, shougang_row]
    assert own == [header, shougang_row]


def test_an_entitys_compliance_statement_in_json_and_csv(assessed):
    cycle, jingneng, shougang = assessed
    url = f"/api/v1/compliance/entities/{shougang.participant.pk}/statement"

    body = client_for(shougang.actor).get(url).json()
    rows = _csv(client_for(cycle.registry).get(url + "?format=csv&year=2023"))

    assert body["entity"]["id"] == shougang.participant.pk
    assert [(o["year"], o["status"], o["shortfall"]) for o in body["obligations"]] == [(2023, "short", 37)]
    assert [(line["event"], line["asset"], line["quantity"]) for line in body["lines"]] == [
        ("emissions_verified", "", 500),
        ("surrender", "CEA-2023", 463),
        ("assessed_short", "", 37),
    ]
    assert rows[0] == ["time", "year", "event", "asset", "quantity", "reference", "detail"]
    assert [r[1:5] for r in rows[1:]] == [
        ["2023", "emissions_verified", "", "500"],
        ["2023", "surrender", "CEA-2023", "463"],
        ["2023", "assessed_short", "", "37"],
    ]
    assert rows[3][6] == "Short; penalty 11240.60 to 22481.20 CNY at 60.76 per t"
    assert error_of(client_for(jingneng.actor).get(url)) == (404, "participant_not_found")


def test_assessment_on_demand_is_refused_before_the_deadline_and_closes_a_past_year(cycle):
    registry = client_for(cycle.registry)
    registry.patch("/api/v1/compliance/years/2024", {"deadline": "2099-12-31"}, format="json")
    entity = cycle.entity("Jingneng", emissions=10)
    registry.post("/api/v1/compliance/years", {"year": 2023}, format="json")  # deadline 2024-12-31, long past
    registry.post(
        "/api/v1/compliance/years/2023/entities", {"entities": [entity.participant.pk]}, format="json"
    )
    entity_client = client_for(entity.actor)
    before = snapshot()

    early = registry.post("/api/v1/compliance/years/2024/assessment")
    assert error_of(early) == (409, "deadline_not_reached")
    assert snapshot() == before

    late = registry.post("/api/v1/compliance/years/2023/assessment")

    assert late.status_code == 200
    assert [(o["entity"]["id"], o["status"]) for o in late.json()] == [(entity.participant.pk, "unverified")]
    assert ComplianceYear.objects.get(pk=2024).closed_at is None
    assert ComplianceYear.objects.get(pk=2023).closed_at is not None
    summary = registry.get("/api/v1/compliance/years/2024").json()["summary"]
    assert (summary["entities"], summary["verified"], summary["remaining"], summary["short_entities"]) == (
        1,
        10,
        10,
        1,
    )
    assert entity_client.get("/api/v1/compliance/years/2024").json()["summary"] is None
