"""The pledge admin: the register with LTV shown and sortable, and each step calling the services as the
logged-in user (a refusal is a message, never a change)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from core import clock
from exchange.models import PledgeAmendment, PledgeEnforcement, PledgeLoan, PledgeStatus
from tests.helpers.api import admin_client_for
from tests.helpers.ledger import balance, snapshot
from tests.helpers.pledges import DAY, admin_pledge_request_form, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ps():
    return make_pledges()


def staff(actor) -> Client:
    return admin_client_for(actor)


def test_changelist_shows_ltv_and_sorts_by_it(ps):
    low = ps.registered(100, principal_fen=320_000)  # 40%
    high = ps.registered(100, principal_fen=520_000)  # 65%
    client = staff(ps.bank[2])

    page = client.get("/admin/exchange/pledgeloan/")
    assert page.status_code == 200
    assert b"40.00%" in page.content
    assert b"65.00%" in page.content
    columns = page.context["cl"].list_display
    ltv_column = columns.index("ltv")
    ascending = client.get(f"/admin/exchange/pledgeloan/?o={ltv_column}")
    descending = client.get(f"/admin/exchange/pledgeloan/?o=-{ltv_column}")

    assert [loan.pk for loan in ascending.context["cl"].result_list] == [low.pk, high.pk]
    assert [loan.pk for loan in descending.context["cl"].result_list] == [high.pk, low.pk]
    assert client.get(f"/admin/exchange/pledgeloan/{low.pk}/change/").status_code == 200


def test_the_lender_applies_with_accept_and_the_registry_registers_and_anyone_else_is_refused(ps):
    loan = ps.request(100)

    refused = staff(ps.borrower[2]).post(
        "/admin/exchange/pledgeloan/", {"action": "accept", "_selected_action": [loan.pk]}, follow=True
    )
    assert b"pledge_lender_only" in refused.content
    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.REQUESTED

    staff(ps.bank[2]).post("/admin/exchange/pledgeloan/", {"action": "accept", "_selected_action": [loan.pk]})
    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.APPLIED
    refused = staff(ps.bank[2]).post(
        "/admin/exchange/pledgeloan/", {"action": "register", "_selected_action": [loan.pk]}, follow=True
    )
    assert b"wrong_participant_kind" in refused.content
    assert balance(ps.account, ps.cea) == (1000, 0)

    staff(ps.ex.market.registry_actor).post(
        "/admin/exchange/pledgeloan/", {"action": "register", "_selected_action": [loan.pk]}
    )

    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.REGISTERED
    assert balance(ps.account, ps.cea) == (1000, 100)


def test_add_is_the_borrowers_request_and_top_up_has_its_page(ps):
    client = staff(ps.borrower[2])

    response = client.post(
        "/admin/exchange/pledgeloan/add/",
        admin_pledge_request_form(ps, ps.account, ps.bank[0]),
    )
    assert response.status_code == 302, response.content[:2000]
    loan = PledgeLoan.objects.get()
    assert (loan.status, loan.borrower_id, loan.quantity) == (PledgeStatus.REQUESTED, ps.borrower[0].pk, 100)
    assert (loan.principal_fen, loan.annual_rate_bp, loan.ltv_limit_bp, loan.margin_call_bp, loan.liquidation_bp) == (
        480_000,
        385,
        7000,
        8000,
        9000,
    )

    staff(ps.bank[2]).post("/admin/exchange/pledgeloan/", {"action": "accept", "_selected_action": [loan.pk]})
    ps.register(loan)
    assert client.get(f"/admin/exchange/pledgeloan/{loan.pk}/top-up/").status_code == 200
    topped = client.post(f"/admin/exchange/pledgeloan/{loan.pk}/top-up/", {"quantity": 50})

    # the page applies for a top-up amendment (the one way to top up): nothing is frozen yet
    assert topped.status_code == 302
    amendment = PledgeAmendment.objects.get(loan=loan)
    assert (amendment.kind, amendment.status, amendment.quantity) == ("top_up", "requested", 50)
    assert PledgeLoan.objects.get(pk=loan.pk).quantity == 100
    assert balance(ps.account, ps.cea) == (1000, 100)
    # the lender confirms and the registry registers it, by the amendment admin's actions: now it is frozen
    staff(ps.bank[2]).post(
        "/admin/exchange/pledgeamendment/", {"action": "confirm", "_selected_action": [amendment.pk]}
    )
    staff(ps.ex.market.registry_actor).post(
        "/admin/exchange/pledgeamendment/", {"action": "register", "_selected_action": [amendment.pk]}
    )
    assert PledgeLoan.objects.get(pk=loan.pk).quantity == 150
    assert balance(ps.account, ps.cea) == (1000, 150)


def test_the_exposure_page_sums_each_lenders_open_loans(ps):
    ps.registered(100)
    ps.registered(200)

    page = staff(ps.bank[2]).get("/admin/exchange/pledgeloan/exposure/")

    assert page.status_code == 200
    rows = page.context["rows"]
    assert [(e.lender, e.loans, e.principal_fen, e.collateral_value_fen) for e in rows] == [
        ("Bank of Beijing", 2, 1_440_000, 2_400_000)
    ]
    assert "Bank of Beijing" in page.content.decode()


def test_the_lender_confirms_and_the_registry_registers_an_amendment_in_the_admin(ps):
    from exchange.models import PledgeAmendment
    from exchange.services.pledges.amendments import pledge_amendment_request

    loan = ps.registered(100)
    amendment = pledge_amendment_request(actor=ps.borrower[2], loan=loan, kind="top_up", quantity=50)
    url = "/admin/exchange/pledgeamendment/"

    refused = staff(ps.borrower[2]).post(url, {"action": "confirm", "_selected_action": [amendment.pk]}, follow=True)
    assert b"pledge_lender_only" in refused.content
    staff(ps.bank[2]).post(url, {"action": "confirm", "_selected_action": [amendment.pk]})
    refused = staff(ps.bank[2]).post(url, {"action": "register", "_selected_action": [amendment.pk]}, follow=True)
    assert b"wrong_participant_kind" in refused.content
    assert balance(ps.account, ps.cea) == (1000, 100)

    staff(ps.ex.market.registry_actor).post(url, {"action": "register", "_selected_action": [amendment.pk]})

    amendment = PledgeAmendment.objects.get(pk=amendment.pk)
    assert (amendment.status, amendment.reference) == ("registered", f"{loan.registration_reference}-A01")
    assert balance(ps.account, ps.cea) == (1000, 150)
    page = staff(ps.ex.market.registry_actor).get(f"/admin/exchange/pledgeloan/{loan.pk}/change/")
    assert page.status_code == 200
    assert amendment.reference.encode() in page.content


def test_substitute_cash_is_asked_on_its_page_and_held_when_the_lender_consents_by_action(ps):
    from exchange.models import PledgeComplianceRelease
    from exchange.services.compliance import compliance_year_create, emissions_record, entities_cover

    # Given a registered pledge of 500 t (24,000.00 at 80.00) whose borrower owes a surrender for 2024
    registry = ps.ex.market.registry_actor
    year = compliance_year_create(actor=registry, year=2024)
    [obligation] = entities_cover(actor=registry, year=year, entities=[ps.borrower[0]])
    emissions_record(actor=registry, obligation=obligation, quantity=600)
    ps.ex.deposit(ps.account, 1_000_000)
    loan = ps.registered(500)
    borrower, lender = staff(ps.borrower[2]), staff(ps.bank[2])

    # When the borrower asks, on its page, to surrender 100 t against 8,000.00 yuan held in their place (typed
    # in yuan)
    assert borrower.get(f"/admin/exchange/pledgeloan/{loan.pk}/compliance-release/").status_code == 200
    asked = borrower.post(
        f"/admin/exchange/pledgeloan/{loan.pk}/compliance-release/",
        {"quantity": 100, "year": 2024, "substitute_quantity": 0, "substitute_cash_fen": "8,000.00"},
    )
    assert asked.status_code == 302
    assert PledgeComplianceRelease.objects.get(loan=loan).substitute_cash_fen == 800_000
    assert balance(ps.account, ps.ex.cny) == (1_000_000, 0)  # nothing moves on the request

    # and the borrower can't consent for the lender: a message, nothing changed
    before = snapshot()
    borrower.post(
        "/admin/exchange/pledgeloan/",
        {"action": "consent_compliance_release", "_selected_action": [loan.pk]},
    )
    assert snapshot() == before

    # Then the lender's consent holds the cash under the pledge and releases the units into the surrender
    lender.post(
        "/admin/exchange/pledgeloan/",
        {"action": "consent_compliance_release", "_selected_action": [loan.pk]},
    )
    loan.refresh_from_db()
    assert (loan.quantity, loan.cash_collateral_fen) == (400, 800_000)
    assert balance(ps.account, ps.ex.cny) == (1_000_000, 800_000)


# --- enforcement by sale: the price typed in yuan -----------------------------------------------------------
ENFORCEMENT_DAY = DAY + timedelta(days=2)  # the default loan matured the day before


def test_the_lender_enforces_by_sale_with_the_price_and_costs_typed_in_yuan(ps):
    loan = ps.defaulted(500)
    lender = staff(ps.bank[2])
    page = f"/admin/exchange/pledgeloan/{loan.pk}/enforce-sale/"

    with clock.pinned(at(ENFORCEMENT_DAY)):
        form = lender.get(page)
        sold = lender.post(page, {"price_fen": "72.50", "costs_fen": "1,200.00"})

    assert "Limit price (yuan a tonne)" in form.content.decode()
    assert sold.status_code == 302
    enforcement = PledgeEnforcement.objects.get(loan=loan)
    assert (enforcement.method, enforcement.price_fen, enforcement.costs_fen) == ("sale", 7250, 120_000)
    # Only the units the debt needs are offered (docs/pledges.md): principal, interest and the 1,200.00 yuan of
    # costs at 72.50 less the seller's fee come to 350 of the 500 t; the other 150 t stay pledged.
    assert (enforcement.order.price_fen, enforcement.order.quantity) == (7250, 350)


@pytest.mark.parametrize(
    ("price", "costs", "error"),
    [
        ("72.505", "0", "Enter yuan with at most two decimals (fen), e.g. 72.50."),
        ("72.50", "0.001", "Enter yuan with at most two decimals (fen), e.g. 72.50."),
        ("0", "0", "Enter at least 0.01 yuan."),
        ("72.50", "-1", "Enter at least 0.00 yuan."),
        ("7250 fen", "0", "Enter a number."),
    ],
)
def test_a_sale_price_finer_than_a_fen_or_not_positive_is_refused_and_nothing_changes(ps, price, costs, error):
    loan = ps.defaulted(500)
    before = snapshot()

    with clock.pinned(at(ENFORCEMENT_DAY)):
        refused = staff(ps.bank[2]).post(
            f"/admin/exchange/pledgeloan/{loan.pk}/enforce-sale/", {"price_fen": price, "costs_fen": costs}
        )

    assert refused.status_code == 200
    assert [str(e) for errors in refused.context["form"].errors.values() for e in errors] == [error]
    assert not PledgeEnforcement.objects.filter(loan=loan).exists()
    assert snapshot() == before


def test_the_sale_page_reads_in_chinese_with_the_price_in_yuan(ps):
    loan = ps.defaulted(500)

    with clock.pinned(at(ENFORCEMENT_DAY)):
        page = staff(ps.bank[2]).get(
            f"/admin/exchange/pledgeloan/{loan.pk}/enforce-sale/", HTTP_ACCEPT_LANGUAGE="zh-hans"
        )
        refused = staff(ps.bank[2]).post(
            f"/admin/exchange/pledgeloan/{loan.pk}/enforce-sale/",
            {"price_fen": "72.505", "costs_fen": "0"},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )

    assert "通过交易所出售处置" in page.content.decode()
    assert "限价（元／吨）" in page.content.decode()
    assert "请以元为单位输入，最多两位小数（精确到分），例如 72.50。" in refused.content.decode()
