"""/api/v1/compliance/... for the rules and cures: allocation rules and inputs, the final allocation, deductions,
conservative determination, carryover rules and limits, official prices; refusals as JSON with their codes."""

from __future__ import annotations

from datetime import date

import pytest

from exchange.models import AllocationDeduction, AllocationRule, CarryoverRule, OfficialPrice, VerifiedEmission
from exchange.services.compliance import compliance_deadlines_run
from tests.factories import make_trade
from tests.helpers.api import client_for, error_of
from tests.helpers.compliance import make_cycle
from tests.helpers.ledger import balance, snapshot

pytestmark = pytest.mark.django_db

POWER_RULE = {
    "year": 2024,
    "sector": "power",
    "stage": "final",
    "method": "benchmark",
    "benchmark": "0.8218",
    "heat_benchmark": "0.1105",
    "output_unit": "MWh",
    "factors": ["cooling", "load"],
    "effective_from": "2025-01-01",
    "source": "2023-2024 power allocation plan (demo figures)",
}


def test_the_registry_enters_a_power_rule_and_inputs_and_runs_the_final_allocation():
    cycle = make_cycle(2024)
    plant = cycle.entity("Coal Plant", sector="power")
    registry = client_for(cycle.registry)
    entity = client_for(plant.actor)

    refused = entity.post("/api/v1/compliance/allocation-rules", POWER_RULE, format="json", HTTP_IDEMPOTENCY_KEY="r0")
    assert refused.status_code == 403
    bad = registry.post(
        "/api/v1/compliance/allocation-rules",
        POWER_RULE | {"benchmark": "0.82181234"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="r1",
    )
    assert bad.status_code == 400
    assert AllocationRule.objects.count() == 0
    created = registry.post("/api/v1/compliance/allocation-rules", POWER_RULE, format="json", HTTP_IDEMPOTENCY_KEY="r2")
    assert created.status_code == 201, created.json()
    assert (created.json()["benchmark"], created.json()["version"]) == ("0.8218", 1)
    assert [r["id"] for r in entity.get("/api/v1/compliance/allocation-rules?year=2024").json()["results"]] == [
        created.json()["id"]
    ]

    data = registry.post(
        f"/api/v1/compliance/obligations/{plant.obligation.pk}/allocation-input",
        {"output": 100_000, "heat_output": 0, "factors": {"cooling": "0.99", "load": "1.012"}, "reference": "PR-1"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="i1",
    )
    assert data.status_code == 201, data.json()
    assert data.json()["factors"] == {"cooling": "0.99", "load": "1.012"}

    run = registry.post("/api/v1/compliance/years/2024/allocation", HTTP_IDEMPOTENCY_KEY="f1")
    assert run.status_code == 200, run.json()
    # 100,000 MWh x 0.8218 x 0.99 x 1.012 = 82,334.4 -> 82,334 t.
    [entry] = run.json()["entries"]
    assert (entry["computed"], entry["quantity"], entry["rule"]) == (82_334, 82_334, created.json()["id"])
    assert balance(plant.account, cycle.market.cea) == (82_334, 0)
    assert registry.post("/api/v1/compliance/years/2024/allocation", HTTP_IDEMPOTENCY_KEY="f1").json() == run.json()


def test_deduction_and_determination_over_the_api():
    cycle = make_cycle(2023)
    short = cycle.entity("Short Co.", emissions=50)
    silent = cycle.entity("Silent Co.")
    registry = client_for(cycle.registry)

    early = registry.post(
        f"/api/v1/compliance/obligations/{silent.obligation.pk}/determination",
        {"quantity": 900, "basis": "capacity x hours"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="d0",
    )
    # 2023's emissions are due by 2024-09-30, long past: the determination is accepted.
    assert early.status_code == 201, early.json()
    assert (early.json()["quantity"], early.json()["conservative"]) == (900, True)

    not_short = registry.post(
        f"/api/v1/compliance/obligations/{short.obligation.pk}/deduction", {}, format="json", HTTP_IDEMPOTENCY_KEY="x1"
    )
    assert error_of(not_short) == (409, "obligation_not_short")
    compliance_deadlines_run(today=date(2025, 1, 1))
    before = snapshot()
    too_much = registry.post(
        f"/api/v1/compliance/obligations/{short.obligation.pk}/deduction",
        {"quantity": 51},
        format="json",
        HTTP_IDEMPOTENCY_KEY="x2",
    )
    assert error_of(too_much) == (409, "deduction_exceeds_shortfall")
    assert snapshot() == before
    decided = registry.post(
        f"/api/v1/compliance/obligations/{short.obligation.pk}/deduction",
        {"reason": "not corrected"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="x3",
    )
    assert decided.status_code == 201, decided.json()
    assert (decided.json()["quantity"], decided.json()["target_year"]) == (50, 2024)
    got = client_for(short.actor).get(f"/api/v1/compliance/obligations/{short.obligation.pk}").json()
    assert (got["status"], got["deduction"]) == ("short", 50)
    assert AllocationDeduction.objects.count() == 1
    assert VerifiedEmission.objects.filter(conservative=True).count() == 1


def test_carryover_rule_and_an_entitys_limit_in_the_api_and_the_statement():
    cycle = make_cycle(2024)
    seller = cycle.entity("Seller Co.", emissions=1)
    other = cycle.entity("Other Co.", emissions=1)
    buyer = cycle.market.holder("Buyer Co.")[1]
    cycle.market.give(seller.account, 400)
    make_trade(
        asset=cycle.market.cea, seller=seller.account, buyer=buyer, quantity=400, price_fen=9_000, day=date(2025, 2, 3)
    )
    registry = client_for(cycle.registry)
    body = {
        "year": 2024,
        "first_vintage": 2019,
        "base_tonnes": 10_000,
        "net_sales_multiple_bp": 15_000,
        "sales_from": "2024-01-01",
        "sales_to": "2025-12-31",
        "effective_from": "2024-10-01",
        "source": "2023-2024 power allocation plan, carryover",
    }
    assert (
        client_for(seller.actor)
        .post("/api/v1/compliance/carryover-rules", body, format="json", HTTP_IDEMPOTENCY_KEY="c0")
        .status_code
        == 403
    )
    created = registry.post("/api/v1/compliance/carryover-rules", body, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert created.status_code == 201, created.json()
    assert CarryoverRule.objects.count() == 1

    mine = client_for(seller.actor).get(f"/api/v1/compliance/entities/{seller.participant.pk}/carryover?year=2024")
    assert mine.status_code == 200, mine.json()
    got = mine.json()
    assert (got["sold"], got["bought"], got["net_sales"], got["limit"], got["used"]) == (400, 0, 400, 10_600, 0)
    assert error_of(
        client_for(other.actor).get(f"/api/v1/compliance/entities/{seller.participant.pk}/carryover?year=2024")
    ) == (404, "participant_not_found")
    assert error_of(
        client_for(seller.actor).get(f"/api/v1/compliance/entities/{seller.participant.pk}/carryover?year=2030")
    ) == (404, "compliance_rule_not_found")
    statement = client_for(seller.actor).get(f"/api/v1/compliance/entities/{seller.participant.pk}/statement").json()
    assert [(c["rule"]["year"], c["limit"]) for c in statement["carryover"]] == [(2024, 10_600)]


def test_official_prices_are_entered_by_the_registry_in_yuan():
    cycle = make_cycle(2024)
    registry = client_for(cycle.registry)
    body = {"market": "CN-ETS", "month": "2025-12-01", "price": "98.12", "source": "MEE notice"}
    created = registry.post("/api/v1/compliance/prices", body, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    assert created.status_code == 201, created.json()
    assert (created.json()["price"], created.json()["version"]) == ("98.12", 1)
    assert OfficialPrice.objects.get().price_fen == 9_812
    bad = registry.post("/api/v1/compliance/prices", body | {"price": "0.00"}, format="json", HTTP_IDEMPOTENCY_KEY="p2")
    assert bad.status_code == 400
    assert OfficialPrice.objects.count() == 1
