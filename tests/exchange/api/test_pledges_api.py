"""Pledges over HTTP: each step, who sees what (404 for anyone else), the loan book and register (JSON, CSV)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from accounts.models import ParticipantKind
from core import clock
from exchange.models import PledgeLoan, PledgeStatus
from exchange.services.pledges import pledges_value
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import balance, blocks
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ps():
    return make_pledges()


def request_body(ps, **changes):
    return {
        "account": ps.account.number,
        "lender": ps.bank[0].pk,
        "asset": "CEA-2024",
        "quantity": 500,
        "principal": "24000.00",
        "annual_rate_bp": 385,
        "maturity": "2027-11-25",
        "ltv_limit_bp": 7000,
        "margin_call_bp": 8000,
        "liquidation_bp": 9000,
        **changes,
    }


def test_request_accept_top_up_and_release_over_http(ps):
    borrower, bank = client_for(ps.borrower[2]), client_for(ps.bank[2])

    created = borrower.post("/api/v1/pledges", request_body(ps), format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["status"], body["ltv_bp"], body["ltv_percent"], body["principal"], body["annual_rate_percent"]) == (
        "requested",
        6000,
        "60.00",
        "24000.00",
        "3.85",
    )
    again = borrower.post("/api/v1/pledges", request_body(ps), format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert again.json()["id"] == body["id"]
    assert PledgeLoan.objects.count() == 1
    pk = body["id"]

    assert error_of(bank.post(f"/api/v1/pledges/{pk}/accept", {"terms_digest": "0" * 64}, format="json")) == (
        409,
        "pledge_terms_mismatch",
    )
    confirmed = bank.post(f"/api/v1/pledges/{pk}/accept", {"terms_digest": body["terms_digest"]}, format="json")
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "applied")
    assert error_of(bank.post(f"/api/v1/pledges/{pk}/register")) == (403, "wrong_participant_kind")
    registry = client_for(ps.ex.market.registry_actor)
    accepted = registry.post(f"/api/v1/pledges/{pk}/register")
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["status"] == "registered"
    assert accepted.json()["certificate_url"] == f"/registry/pledges/CNPL-2026-{pk:06d}"
    assert accepted.json()["registration_reference"] == f"CNPL-2026-{pk:06d}"
    assert accepted.json()["collateral"] == [
        {
            "kind": "initial",
            "quantity": 500,
            "serials": [[1, 500]],
            "frozen": True,
            "created_at": accepted.json()["collateral"][0]["created_at"],
        }
    ]
    assert accepted.json()["lender_account"] == ps.bank_account.number

    # a top-up is the one registered amendment: applied, confirmed, registered
    assert borrower.post(f"/api/v1/pledges/{pk}/top-up", {"quantity": 100}, format="json").status_code == 404
    amendments = f"/api/v1/pledges/{pk}/amendments"
    applied = borrower.post(amendments, {"kind": "top_up", "quantity": 100}, format="json", HTTP_IDEMPOTENCY_KEY="t")
    assert applied.status_code == 201, applied.json()
    number, digest = applied.json()["id"], applied.json()["terms_digest"]
    assert bank.post(f"{amendments}/{number}/confirm", {"terms_digest": digest}, format="json").status_code == 200
    assert registry.post(f"{amendments}/{number}/register").status_code == 200
    topped = borrower.get(f"/api/v1/pledges/{pk}")
    assert (topped.json()["quantity"], topped.json()["ltv_percent"]) == (600, "50.00")
    assert balance(ps.account, ps.cea) == (1000, 600)

    released = bank.post(f"/api/v1/pledges/{pk}/release", {"repayment_reference": "R-1"}, format="json")
    assert released.status_code == 200
    assert (released.json()["status"], released.json()["interest"]) == ("released", "0.00")
    assert [c["frozen"] for c in released.json()["collateral"]] == [False, False]
    assert blocks(ps.cea, ps.account) == [(1, 1000, ps.account.number, "available")]


def test_steps_are_refused_with_their_codes_over_http(ps):
    loan = ps.request(100)
    borrower, bank = client_for(ps.borrower[2]), client_for(ps.bank[2])

    assert error_of(
        borrower.post(f"/api/v1/pledges/{loan.pk}/accept", {"terms_digest": loan.terms_digest}, format="json")
    ) == (403, "pledge_lender_only")
    assert error_of(bank.post(f"/api/v1/pledges/{loan.pk}/withdraw")) == (403, "pledge_borrower_only")
    assert error_of(bank.post(f"/api/v1/pledges/{loan.pk}/release", {}, format="json")) == (
        409,
        "invalid_pledge_transition",
    )
    response = bank.post(f"/api/v1/pledges/{loan.pk}/enforce", {"method": "agreement", "price": "80.00"}, format="json")
    assert error_of(response) == (409, "invalid_pledge_transition")
    assert response.json()["error"]["details"] == {
        "pledge": loan.pk,
        "action": "enforce",
        "from": "requested",
        "to": "enforced",
    }
    assert error_of(bank.post(f"/api/v1/pledges/{loan.pk}/enforce", {"method": "sale"}, format="json"))[0] == 400
    assert (
        error_of(
            bank.post(f"/api/v1/pledges/{loan.pk}/enforce", {"method": "transfer", "price": "80.00"}, format="json")
        )[0]
        == 400
    )
    assert error_of(borrower.post("/api/v1/pledges", request_body(ps, quantity=1001), format="json")) == (
        409,
        "insufficient_available",
    )
    assert error_of(borrower.post("/api/v1/pledges", request_body(ps, principal="30000.00"), format="json")) == (
        409,
        "ltv_limit_exceeded",
    )
    assert error_of(borrower.post("/api/v1/pledges", request_body(ps, lender=999999), format="json")) == (
        400,
        "invalid_lender",
    )
    assert error_of(borrower.post("/api/v1/pledges", request_body(ps, principal=24000.5), format="json"))[0] == 400
    assert error_of(borrower.post("/api/v1/pledges", request_body(ps, margin_call_bp=6000), format="json")) == (
        400,
        "invalid_pledge_terms",
    )


def test_anyone_elses_pledge_answers_404(ps):
    loan = ps.request(100)
    stranger = client_for(ps.ex.trader("Stranger")[2])
    other_bank = client_for(ps.ex.trader("Other bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)[2])

    for client in (stranger, other_bank):
        assert error_of(client.get(f"/api/v1/pledges/{loan.pk}")) == (404, "pledge_not_found")
        assert error_of(
            client.post(f"/api/v1/pledges/{loan.pk}/accept", {"terms_digest": loan.terms_digest}, format="json")
        ) == (404, "pledge_not_found")
        assert error_of(client.get(f"/api/v1/pledges/{loan.pk}/valuations")) == (404, "pledge_not_found")
        assert client.get("/api/v1/pledges").json()["results"] == []
    assert client_for(ps.borrower[2]).get(f"/api/v1/pledges/{loan.pk}").status_code == 200
    assert client_for(ps.bank[2]).get(f"/api/v1/pledges/{loan.pk}").status_code == 200
    auditor = ps.ex.trader("Auditor", kind=ParticipantKind.AUDITOR)[2]
    assert client_for(auditor).get(f"/api/v1/pledges/{loan.pk}").status_code == 200


@pytest.fixture
def book(ps):
    """The bank's book after a price fall to 58.32: one pledge in margin call (82.31%), one topped up to
    1000 t (41.16%, its call met) maturing sooner, and a request."""
    other = ps.ex.trader("Shougang", units=1000)
    healthy = ps.registered(500, maturity_date=DAY + timedelta(days=300))
    squeezed = ps.registered(500, borrower=other, principal_fen=2_400_000)
    ps.request(100)
    ps.close_at(DAY, 7200)
    ps.close_at(DAY + timedelta(days=1), 6480)
    ps.close_at(DAY + timedelta(days=2), 5832)
    with clock.pinned(at(DAY + timedelta(days=2), 15, 40)):
        pledges_value()
    with clock.pinned(at(DAY + timedelta(days=2))):
        ps.top_up(healthy, 500)
    return healthy, squeezed


def test_loan_book_filters_by_status_ltv_band_and_maturity(ps, book):
    healthy, squeezed = book
    bank = client_for(ps.bank[2])

    def ids(query: str) -> list[int]:
        response = bank.get(f"/api/v1/pledges/loan-book{query}")
        assert response.status_code == 200, response.json()
        return [p["id"] for p in response.json()["results"]]

    assert len(ids("")) == 3
    assert ids("?status=registered") == [squeezed.pk, healthy.pk]
    assert ids("?ltv_band=margin_call") == [squeezed.pk]
    assert ids("?ltv_band=healthy&status=registered") == [healthy.pk]
    assert ids("?ltv_band=liquidation") == []
    assert ids("?ltv_min_bp=8000") == [squeezed.pk]
    assert ids("?maturity_before=2026-12-31") == []
    assert ids("?maturity_before=2027-09-30&status=registered") == [healthy.pk]
    squeezed_row = bank.get(f"/api/v1/pledges/{squeezed.pk}").json()
    assert (squeezed_row["ltv_percent"], squeezed_row["price"], squeezed_row["margin_call"]["cure_by"]) == (
        "82.31",
        "58.32",
        "2026-11-30",
    )
    assert error_of(client_for(ps.borrower[2]).get("/api/v1/pledges/loan-book")) == (403, "wrong_participant_kind")


def test_loan_book_as_csv(ps, book):
    healthy, squeezed = book

    response = client_for(ps.bank[2]).get("/api/v1/pledges/loan-book?format=csv&status=registered")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [(r["id"], r["ltv_percent"], r["serials"], r["margin_call_open_since"]) for r in rows] == [
        (str(squeezed.pk), "82.31", "1001-1500", "2026-11-27"),
        (str(healthy.pk), "41.16", "1-500;501-1000", ""),  # 24,000.00 / (1000 x 58.32): 41.152% rounded up
    ]


def test_pledge_register_for_the_registry_and_auditors(ps, book):
    healthy, squeezed = book
    registry = client_for(ps.ex.market.registry_actor)

    response = registry.get("/api/v1/pledges/register")

    assert [p["registration_reference"] for p in response.json()["results"]] == [
        squeezed.registration_reference,
        healthy.registration_reference,
    ]
    as_csv = registry.get("/api/v1/pledges/register?format=csv")
    lines = b"".join(as_csv.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id,registration_reference,status,borrower,account,lender")
    assert len(lines) == 3
    assert error_of(client_for(ps.bank[2]).get("/api/v1/pledges/register")) == (403, "wrong_participant_kind")


def test_valuations_of_a_pledge(ps, book):
    _, squeezed = book

    response = client_for(ps.ex.trader("Shougang")[2]).get(f"/api/v1/pledges/{squeezed.pk}/valuations")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["day"], row["price"], row["value"], row["ltv_percent"], row["price_source"]) == (
        "2026-11-27",
        "58.32",
        "29160.00",
        "82.31",
        "close",
    )
    assert row["margin_call"] is not None


def test_default_and_enforce_by_sale_over_http(ps):
    loan = ps.defaulted(500)
    bank = client_for(ps.bank[2])
    with clock.pinned(at(DAY + timedelta(days=2))):
        response = bank.post(f"/api/v1/pledges/{loan.pk}/enforce", {"method": "sale", "price": "80.00"}, format="json")

    assert response.status_code == 200, response.json()
    enforcement = response.json()["enforcement"]
    assert (enforcement["method"], enforcement["status"], enforcement["price"], enforcement["amount_due"]) == (
        "sale",
        "selling",
        "80.00",
        "24005.13",  # 24,000.00 + 2 days at 3.85%, actual/360
    )
    assert response.json()["status"] == PledgeStatus.DEFAULTED


@pytest.mark.parametrize("query", ["borrower=-8.8e%2B226", "lender=1.5", "ltv_min_bp=1e400", "ltv_max_bp=x"])
def test_filters_refuse_what_is_not_a_whole_id_with_400(ps, query):
    response = client_for(ps.bank[2]).get(f"/api/v1/pledges?{query}")

    assert error_of(response) == (400, "invalid")


def test_the_lenders_exposure_is_summed_over_its_open_loans(ps, book):
    bank = client_for(ps.bank[2])

    response = bank.get("/api/v1/pledges/exposure")

    assert response.status_code == 200, response.json()
    # 1000 t and 500 t at 58.32 = 87,480.00 against 2 x 24,000.00; 48,000 / 87,480 = 54.87% rounded up
    assert response.json() == [
        {
            "lender_id": ps.bank[0].pk,
            "lender": "Bank of Beijing",
            "loans": 2,
            "principal": "48000.00",
            "collateral_value": "87480.00",
            "cash_collateral": "0.00",
            "ltv_bp": 5487,
            "margin_calls_open": 1,
            "defaulted": 0,
            "received_on_enforcement": "0.00",
        }
    ]
    other_bank = client_for(ps.ex.trader("Other bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)[2])
    assert other_bank.get("/api/v1/pledges/exposure").json() == []
    assert client_for(ps.ex.market.registry_actor).get("/api/v1/pledges/exposure").json() == response.json()
    as_csv = bank.get("/api/v1/pledges/exposure?format=csv")
    lines = b"".join(as_csv.streaming_content).decode("utf-8-sig").splitlines()
    assert lines == [
        "lender_id,lender,loans,principal,collateral_value,cash_collateral,ltv_bp,margin_calls_open,defaulted,"
        "received_on_enforcement",
        f"{ps.bank[0].pk},Bank of Beijing,2,48000.00,87480.00,0.00,5487,1,0,0.00",
    ]
    assert error_of(client_for(ps.borrower[2]).get("/api/v1/pledges/exposure")) == (403, "wrong_participant_kind")


def test_the_register_csv_shows_registration_day_count_margin_calls_and_enforcement(ps, book):
    _, squeezed = book

    as_csv = client_for(ps.bank[2]).get("/api/v1/pledges/loan-book?format=csv&status=registered")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(b"".join(as_csv.streaming_content).decode("utf-8-sig")))}

    row = rows[str(squeezed.pk)]
    assert (row["kind"], row["day_count"], row["margin_calls"], row["enforcement_method"]) == (
        "units",
        "act/360",
        "1",
        "",
    )
