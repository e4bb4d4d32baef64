"""China's registry rules on the API: a court's freeze, its release and seizure; a non-trade transfer from
application to a second officer's approval; the CCER application with its publicity window; the serial
lookup that shows frozen units without their holder. Refusals are the JSON error body and change nothing."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core import clock
from exchange.models import Issuance
from exchange.services.calendar import calendar_year_load
from exchange.services.ccer import (
    ccer_application_decide,
    ccer_application_submit,
    ccer_publicity_open,
    ccer_reference_seed,
)
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import actor_for, assert_reconciled, balance, make_market, snapshot

pytestmark = pytest.mark.django_db

DOC = "9" * 64


def test_a_freeze_is_entered_released_and_its_units_seized_on_the_api():
    market = make_market()
    _, account, holder = market.holder("Holder")
    _, creditor, _ = market.holder("Creditor")
    market.give(account, 100)
    registry = client_for(market.registry_actor)
    body = {
        "account": account.number,
        "asset": market.cea.code,
        "court": "Beijing No. 3 Intermediate People's Court",
        "document_number": "(2026) Jing 03 Zhi Bao 88",
        "document_sha256": DOC,
        "serials": [1, 30],
    }
    holder_client, other_client = client_for(holder), client_for(market.holder("Someone")[2])
    before = snapshot()
    assert error_of(registry.post("/api/v1/freezes", body | {"document_sha256": "x" * 64}, format="json")) == (
        400,
        "invalid",  # the schema states the pattern: 64 hexadecimal characters
    )
    assert error_of(holder_client.post("/api/v1/freezes", body, format="json"))[0] == 403
    assert snapshot() == before

    created = registry.post("/api/v1/freezes", body, format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    assert created.status_code == 201, created.json()
    freeze = created.json()
    assert (freeze["quantity"], freeze["status"], freeze["first_serial"], freeze["last_serial"]) == (
        30,
        "active",
        1,
        30,
    )
    assert balance(account, market.cea) == (100, 30)

    # The holder looks the serial up and sees its own account; another member sees frozen, no holder.
    mine = holder_client.get(f"/api/v1/serials/{market.cea.code}/5").json()["block"]
    other = other_client.get(f"/api/v1/serials/{market.cea.code}/5").json()["block"]
    assert (mine["state"], mine["account"]) == ("frozen", account.number)
    assert (other["state"], other["account"], other["holder"]) == ("frozen", None, None)

    seized = registry.post(
        f"/api/v1/freezes/{freeze['id']}/seize",
        {"destination": creditor.number, "document_number": "(2026) Jing 03 Zhi 88", "document_sha256": DOC},
        format="json",
    )
    assert seized.status_code == 200, seized.json()
    assert (seized.json()["status"], seized.json()["seized_to"]) == ("seized", creditor.number)
    assert balance(creditor, market.cea) == (30, 0)
    assert balance(account, market.cea) == (70, 0)
    released = registry.post(
        f"/api/v1/freezes/{freeze['id']}/release",
        {"document_number": "x", "document_sha256": DOC},
        format="json",
    )
    assert error_of(released) == (409, "freeze_ended")
    assert_reconciled()


def test_a_non_trade_transfer_on_the_api_needs_two_officers():
    market = make_market(china_transfer_rules=True)
    _, source, holder = market.holder("Holder")
    _, destination, _ = market.holder("Successor")
    market.give(source, 100)
    client = client_for(holder)
    refused = client.post(
        "/api/v1/transfers",
        {"source": source.number, "destination": destination.number, "asset": market.cea.code, "quantity": 5},
        format="json",
    )
    assert error_of(refused) == (409, "non_trade_transfer_required")
    applied = client.post(
        "/api/v1/non-trade-transfers",
        {
            "source": source.number,
            "destination": destination.number,
            "asset": market.cea.code,
            "quantity": 40,
            "legal_basis": "merger_split",
            "document_sha256": DOC,
        },
        format="json",
    )
    assert applied.status_code == 201, applied.json()
    transfer = applied.json()
    assert transfer["status"] == "applied"
    officer_a, officer_b = client_for(market.registry_actor), client_for(actor_for(market.registry))
    reviewed = officer_a.post(f"/api/v1/non-trade-transfers/{transfer['id']}/review", {}, format="json").json()
    assert reviewed["status"] == "reviewed"
    assert error_of(officer_a.post(f"/api/v1/approvals/{reviewed['approval']}/approve")) == (
        403,
        "four_eyes_same_user",
    )
    approved = officer_b.post(f"/api/v1/approvals/{reviewed['approval']}/approve")
    assert approved.status_code == 200, approved.json()
    assert balance(destination, market.cea) == (40, 0)
    listed = client.get("/api/v1/non-trade-transfers").json()["results"]
    assert [(t["id"], t["status"]) for t in listed] == [(transfer["id"], "approved")]
    assert_reconciled()


def test_a_ccer_application_on_the_api_is_published_and_commented():
    with clock.pinned(datetime(2026, 9, 24, 10, tzinfo=clock.MARKET_TZ)):
        market = make_market()
        ccer_reference_seed(actor=market.registry_actor)
        calendar_year_load(actor=market.registry_actor, code="CN", year=2026)
        owner = client_for(market.holder("Owner", kind="project_owner")[2])
        body = {
            "code": "WIND-OFF-1",
            "name": "Offshore wind",
            "project_type": "renewable",
            "methodology": "CCER-01-002-V01",
            "location": "Yancheng, Jiangsu",
            "start_date": "2021-06-01",
            "crediting_start": "2021-06-01",
            "crediting_end": "2031-05-31",
            "validation_body": "CEC",
            "validation_report_sha256": DOC,
        }
        too_long = owner.post("/api/v1/ccer/applications", body | {"crediting_end": "2031-06-01"}, format="json")
        assert error_of(too_long) == (409, "ccer_ineligible")
        covered = client_for(market.holder("Power plant")[2])
        assert error_of(covered.post("/api/v1/ccer/applications", body, format="json")) == (
            409,
            "ccer_owner_ets_covered",
        )
        created = owner.post("/api/v1/ccer/applications", body, format="json")
        assert created.status_code == 201, created.json()
        pk = created.json()["id"]
        opened = client_for(market.registry_actor).post(f"/api/v1/ccer/applications/{pk}/publicity").json()
        assert (opened["publicity_start"], opened["publicity_end"]) == ("2026-09-24", "2026-10-29")
        commented = client_for(market.holder("NGO", kind="investor")[2]).post(
            f"/api/v1/ccer/applications/{pk}/comments", {"text": "Bird migration route."}, format="json"
        )
        assert commented.status_code == 201, commented.json()
        early = client_for(market.registry_actor).post(
            f"/api/v1/ccer/applications/{pk}/decision", {"approve": True}, format="json"
        )
        assert error_of(early) == (409, "publicity_not_over")
    detail = owner.get(f"/api/v1/ccer/applications/{pk}").json()
    assert [c["author"] for c in detail["comments"]] == ["NGO"]
    methodologies = owner.get("/api/v1/ccer/methodologies").json()["results"]
    assert sorted(m["code"] for m in methodologies) == [
        "CCER-01-001-V01",
        "CCER-01-002-V01",
        "CCER-14-001-V01",
        "CCER-14-002-V01",
    ]
    assert date.fromisoformat(owner.get("/api/v1/ccer/rules").json()["results"][0]["old_ccer_offset_cutoff"]) == date(
        2024, 12, 31
    )


def test_a_claim_above_the_threshold_is_issued_on_the_api_by_a_second_officer(settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 1_000}
    with clock.pinned(datetime(2026, 9, 24, 10, tzinfo=clock.MARKET_TZ)):
        market = make_market()
        ccer_reference_seed(actor=market.registry_actor)
        calendar_year_load(actor=market.registry_actor, code="CN", year=2026)
        owner, account, owner_actor = market.holder("Owner", kind="project_owner")
        application = ccer_publicity_open(
            actor=market.registry_actor,
            target=ccer_application_submit(
                actor=owner_actor,
                owner=owner,
                code="WIND-OFF-2",
                name="Offshore wind",
                project_type="renewable",
                methodology="CCER-01-002-V01",
                location="Yancheng, Jiangsu",
                start_date=date(2021, 6, 1),
                crediting_start=date(2021, 6, 1),
                crediting_end=date(2031, 5, 31),
                validation_body="CEC",
                validation_report_sha256=DOC,
            ),
        )
        ccer_application_decide(
            actor=market.registry_actor, application=application, register=True, today=date(2026, 10, 30)
        )
        claim = client_for(owner_actor).post(
            "/api/v1/ccer/claims",
            {
                "project": "WIND-OFF-2",
                "vintage": 2025,
                "monitoring_start": "2025-01-01",
                "monitoring_end": "2025-12-31",
                "quantity": 2_000,
                "verification_body": "CQC",
                "verification_report_sha256": DOC,
            },
            format="json",
        )
        assert claim.status_code == 201, claim.json()
        pk = claim.json()["id"]
        officer_a, officer_b = client_for(market.registry_actor), client_for(actor_for(market.registry))
        officer_a.post(f"/api/v1/ccer/claims/{pk}/publicity")
    with clock.pinned(datetime(2026, 10, 30, 10, tzinfo=clock.MARKET_TZ)):
        filed = officer_a.post(f"/api/v1/ccer/claims/{pk}/decision", {"approve": True}, format="json")
        assert filed.status_code == 200, filed.json()
        assert (filed.json()["status"], filed.json()["issuance"]) == ("publicity", None)
        approval = filed.json()["approval"]
        refuse = officer_a.post(f"/api/v1/ccer/claims/{pk}/decision", {"approve": False, "reason": "no"}, format="json")
        assert error_of(refuse) == (409, "reduction_claim_awaits_approval")
        assert error_of(officer_a.post(f"/api/v1/approvals/{approval}/approve")) == (403, "four_eyes_same_user")
        approved = officer_b.post(f"/api/v1/approvals/{approval}/approve")
        assert approved.status_code == 200, approved.json()
    issued = officer_a.get(f"/api/v1/ccer/claims/{pk}").json()
    assert issued["status"] == "issued"
    assert issued["issuance"] == f"CCER-CLAIM-{pk}"
    assert balance(account, Issuance.objects.get(external_reference=f"CCER-CLAIM-{pk}").asset) == (2_000, 0)
    assert_reconciled()
