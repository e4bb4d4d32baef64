"""Release for compliance against substitute collateral in cash: with the lender's consent the borrower's cash
is held under the pledge in place of the released units; the loan's collateral value and LTV count it;
enforcement takes the cash first, up to the debt (Civil Code arts. 436-438: never more to the lender than
the debt); the release of the pledge releases the cash hold."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import (
    AuditEvent,
    CollateralKind,
    EnforcementStatus,
    HoldStatus,
    PledgeLoan,
    PledgeStatus,
    TradingMode,
)
from exchange.services.compliance import compliance_year_create, emissions_record, entities_cover
from exchange.services.pledges import (
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_release,
    pledge_sales_complete,
)
from exchange.services.pledges.compliance_release import (
    pledge_compliance_release_decide,
    pledge_compliance_release_request,
)
from exchange.services.session_close import orders_cancel_at_close
from exchange.services.settlement import settlement_run
from tests.helpers.api import client_for
from tests.helpers.ledger import assert_reconciled, balance, snapshot
from tests.helpers.pledges import DAY, at, make_national_pledges, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]

YEAR = 2024
CASH_FEN = 1_000_000  # the borrower's 10,000.00 yuan
SUBSTITUTE_FEN = 800_000  # 8,000.00 yuan held in place of 100 t (8,000.00 at 80.00)
ENFORCEMENT_DAY = DAY + timedelta(days=2)
DUE_FEN = 2_400_000 + 513  # principal + 2 days at 3.85 %, actual/360


@pytest.fixture
def ps():
    ps = make_pledges()
    registry = ps.ex.market.registry_actor
    year = compliance_year_create(actor=registry, year=YEAR)
    [obligation] = entities_cover(actor=registry, year=year, entities=[ps.borrower[0]])
    emissions_record(actor=registry, obligation=obligation, quantity=600)
    ps.ex.deposit(ps.account, CASH_FEN)
    return ps


def _release_against_cash(ps, loan, quantity=100, cash_fen=SUBSTITUTE_FEN):
    pledge_compliance_release_request(
        actor=ps.borrower[2], loan=loan, quantity=quantity, year=YEAR, substitute_cash_fen=cash_fen
    )
    return pledge_compliance_release_decide(actor=ps.bank[2], loan=loan, consent=True)


def _defaulted_with_cash(ps):
    """500 t pledged on DAY, maturing the next day; 100 t released against 8,000.00 cash; in default."""
    with clock.pinned(at(DAY)):
        loan = ps.registered(500, maturity_date=DAY + timedelta(days=1))
        _release_against_cash(ps, loan)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        return pledge_default(actor=ps.bank[2], loan=loan)


def test_cash_in_place_of_released_units_counts_in_the_value_and_ltv(ps):
    loan = ps.registered(500)  # 24,000.00 against 500 t at 80.00: LTV 60 %
    # 100 t out without a substitute: 400 t = 32,000.00, LTV 75 % > the 70 % limit
    pledge_compliance_release_request(actor=ps.borrower[2], loan=loan, quantity=100, year=YEAR)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        pledge_compliance_release_decide(actor=ps.bank[2], loan=loan, consent=True)
    assert refused.value.code == "ltv_limit_exceeded"
    assert snapshot() == before
    pledge_compliance_release_decide(actor=ps.bank[2], loan=loan, consent=False)

    release = _release_against_cash(ps, loan)

    loan = PledgeLoan.objects.get(pk=loan.pk)
    assert (release.status, release.substitute_cash_fen, release.ltv_bp_after) == ("released", SUBSTITUTE_FEN, 6000)
    assert (loan.quantity, loan.cash_collateral_fen, loan.collateral_value_fen, loan.ltv_bp) == (
        400,
        SUBSTITUTE_FEN,
        400 * 8000 + SUBSTITUTE_FEN,
        6000,
    )
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN, SUBSTITUTE_FEN)
    assert balance(ps.account, ps.cea) == (900, 400)
    cash_row = loan.collateral.get(kind=CollateralKind.CASH)
    assert (cash_row.quantity, cash_row.hold.asset_id, cash_row.hold.status) == (
        SUBSTITUTE_FEN,
        ps.ex.cny.pk,
        HoldStatus.ACTIVE,
    )
    assert_reconciled()


def test_cash_the_borrower_does_not_have_is_refused_and_nothing_moves(ps):
    loan = ps.registered(500)
    pledge_compliance_release_request(
        actor=ps.borrower[2], loan=loan, quantity=100, year=YEAR, substitute_cash_fen=CASH_FEN + 1
    )
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        pledge_compliance_release_decide(actor=ps.bank[2], loan=loan, consent=True)
    assert refused.value.code == "insufficient_available"
    assert snapshot() == before
    with pytest.raises(DomainError) as invalid:
        pledge_compliance_release_request(
            actor=ps.borrower[2], loan=loan, quantity=100, year=YEAR, substitute_cash_fen=-1
        )
    assert invalid.value.code == "invalid_pledge_terms"


def test_the_release_of_the_pledge_releases_the_cash_hold(ps):
    loan = ps.registered(500)
    _release_against_cash(ps, loan)

    loan = pledge_release(actor=ps.bank[2], loan=PledgeLoan.objects.get(pk=loan.pk))

    assert (loan.status, loan.cash_collateral_fen) == (PledgeStatus.RELEASED, 0)
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN, 0)
    assert balance(ps.account, ps.cea) == (900, 0)
    assert_reconciled()


def test_enforcement_by_agreement_takes_the_cash_first_then_units_up_to_the_debt(ps):
    loan = _defaulted_with_cash(ps)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)
        enforcement = pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)

    # 8,000.00 cash first; 16,005.13 left buys 200 t at 80.00 (16,000.00); 200 t go back; 5.13 short
    assert (
        enforcement.status,
        enforcement.amount_due_fen,
        enforcement.cash_to_lender_fen,
        enforcement.units_to_lender,
        enforcement.value_fen,
        enforcement.units_released,
        enforcement.received_by_lender_fen,
        enforcement.shortfall_fen,
    ) == (EnforcementStatus.COMPLETED, DUE_FEN, SUBSTITUTE_FEN, 200, 1_600_000, 200, 2_400_000, 513)
    assert balance(ps.bank_account, ps.ex.cny) == (SUBSTITUTE_FEN, 0)
    assert balance(ps.bank_account, ps.cea) == (200, 0)
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN - SUBSTITUTE_FEN, 0)
    assert balance(ps.account, ps.cea) == (700, 0)
    loan.refresh_from_db()
    assert (loan.status, loan.cash_collateral_fen) == (PledgeStatus.ENFORCED, 0)
    assert_reconciled()


def test_cash_above_the_debt_goes_to_the_lender_only_up_to_the_debt(ps):
    ps.ex.deposit(ps.account, 3_000_000)
    with clock.pinned(at(DAY)):
        loan = ps.registered(500, maturity_date=DAY + timedelta(days=1))
        _release_against_cash(ps, loan, quantity=100, cash_fen=3_000_000)  # 30,000.00 held
    with clock.pinned(at(ENFORCEMENT_DAY)):
        pledge_default(actor=ps.bank[2], loan=loan)
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)
        enforcement = pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)

    assert (enforcement.cash_to_lender_fen, enforcement.units_to_lender, enforcement.units_released) == (
        DUE_FEN,
        0,
        400,
    )
    assert balance(ps.bank_account, ps.ex.cny) == (DUE_FEN, 0)
    assert balance(ps.bank_account, ps.cea) == (0, 0)
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN + 3_000_000 - DUE_FEN, 0)
    assert_reconciled()


# 16,005.13 left after the 8,000.00 cash, at 80.00 less the 0.6 % seller's fee (79.52 net a tonne): 202 t
# (16,063.04); 201 t would pay 15,983.52
NEEDED_AFTER_CASH = 202


def test_enforcement_by_sale_takes_the_cash_first_and_the_sale_pays_the_rest(ps):
    loan = _defaulted_with_cash(ps)
    _, buyer_acc, buyer = ps.ex.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        assert enforcement.cash_to_lender_fen == SUBSTITUTE_FEN
        assert balance(ps.bank_account, ps.ex.cny) == (SUBSTITUTE_FEN, 0)
        ps.ex.order(buyer, buyer_acc, "buy", 8000, 400)  # only the 202 t offered fill
        settlement_run()

    # 202 x 80.00 = 16,160.00 less 96.96 fee = 16,063.04: 16,005.13 to the lender, 57.91 the borrower's;
    # the 198 t not offered go back to the borrower
    enforcement.refresh_from_db()
    assert (
        enforcement.status,
        enforcement.units_sold,
        enforcement.paid_to_lender_fen,
        enforcement.received_by_lender_fen,
        enforcement.units_released,
    ) == (EnforcementStatus.COMPLETED, NEEDED_AFTER_CASH, DUE_FEN - SUBSTITUTE_FEN, DUE_FEN, 198)
    assert balance(ps.bank_account, ps.ex.cny) == (DUE_FEN, 0)
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN - SUBSTITUTE_FEN + 1_606_304 - (DUE_FEN - SUBSTITUTE_FEN), 0)
    assert balance(ps.account, ps.cea) == (1000 - 100 - NEEDED_AFTER_CASH, 0)
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.ENFORCED
    assert_reconciled()


def test_a_sale_after_the_cash_offers_only_the_units_the_rest_of_the_debt_needs_and_the_rest_stays_pledged(ps):
    # Given a defaulted pledge of 400 t and 8,000.00 cash held, the debt 24,005.13
    loan = _defaulted_with_cash(ps)
    held_before = balance(ps.account, ps.cea)
    [initial] = loan.collateral.exclude(kind=CollateralKind.CASH)

    # When the lender sells at 80.00
    with clock.pinned(at(ENFORCEMENT_DAY)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)

    # Then the cash is taken and the order offers 202 t, the oldest collateral's lowest blocks; the other 198 t
    # stay frozen under the pledge's own hold, and nothing else moved
    order = enforcement.order
    assert (enforcement.cash_to_lender_fen, order.quantity, enforcement.sale_hold.quantity) == (
        SUBSTITUTE_FEN,
        NEEDED_AFTER_CASH,
        NEEDED_AFTER_CASH,
    )
    # (the release for compliance freed the hold's lowest 100 t: it holds 101-500)
    assert [(b.first, b.last) for b in enforcement.sale_hold.blocks.order_by("first")] == [(101, 302)]
    initial.hold.refresh_from_db()
    assert (initial.hold.status, initial.hold.remaining) == (HoldStatus.ACTIVE, 198)
    assert balance(ps.account, ps.cea) == held_before == (900, 400)
    assert balance(ps.bank_account, ps.cea) == (0, 0)
    loan.refresh_from_db()
    assert (loan.status, loan.quantity) == (PledgeStatus.DEFAULTED, 400)
    [event] = AuditEvent.objects.filter(action="pledge.enforce")
    payload = json.loads(event.payload)
    assert (payload["units"], payload["units_kept"]) == (str(NEEDED_AFTER_CASH), "198")

    # and when the order ends unsold, the lender still owed, all 400 t stay pledged for another round
    with clock.pinned(at(ENFORCEMENT_DAY, 15, 0)):
        orders_cancel_at_close()
    with clock.pinned(at(ENFORCEMENT_DAY, 15, 40)):
        assert pledge_sales_complete() == 1
    loan.refresh_from_db()
    enforcement.refresh_from_db()
    assert (loan.status, loan.quantity, enforcement.units_unsold, enforcement.units_released) == (
        PledgeStatus.DEFAULTED,
        400,
        NEEDED_AFTER_CASH,
        0,
    )
    assert balance(ps.account, ps.cea) == (900, 400)
    assert_reconciled()


def test_a_national_listing_after_the_cash_offers_exactly_the_units_the_rest_of_the_debt_needs():
    # Given the same pledge on the national market (sales are listings under the listing agreement)
    ps = make_national_pledges()
    registry = ps.ex.market.registry_actor
    with clock.pinned(at(DAY, 9)):
        year = compliance_year_create(actor=registry, year=YEAR)
        [obligation] = entities_cover(actor=registry, year=year, entities=[ps.borrower[0]])
        emissions_record(actor=registry, obligation=obligation, quantity=600)
        ps.ex.deposit(ps.account, CASH_FEN)
    loan = _defaulted_with_cash(ps)

    # When the lender sells at 80.00
    with clock.pinned(at(ENFORCEMENT_DAY)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)

    # Then the listing offers the 202 t the debt less the cash needs, and the 198 t left stay pledged
    listing = enforcement.order
    assert (listing.trading_mode, listing.quantity, enforcement.cash_to_lender_fen) == (
        TradingMode.LISTING,
        NEEDED_AFTER_CASH,
        SUBSTITUTE_FEN,
    )
    assert balance(ps.account, ps.cea) == (900, 400)
    assert_reconciled()


def test_without_cash_a_sale_offers_what_the_whole_debt_needs_and_never_more_than_is_pledged(ps):
    # Given two defaulted pledges without cash: 500 t for 24,000.00, and 100 t for 4,800.00 whose lender's
    # costs of 5,000.00 make the debt more than the units fetch
    with clock.pinned(at(DAY)):
        big = ps.registered(500, maturity_date=DAY + timedelta(days=1))
        small = ps.registered(100, maturity_date=DAY + timedelta(days=1))
    with clock.pinned(at(ENFORCEMENT_DAY)):
        for loan in (big, small):
            pledge_default(actor=ps.bank[2], loan=loan)

        # When the lender sells both at 80.00
        sale = pledge_enforce(actor=ps.bank[2], loan=big, method="sale", price_fen=8000)
        all_of_it = pledge_enforce(actor=ps.bank[2], loan=small, method="sale", price_fen=8000, costs_fen=500_000)

    # Then the first offers the 302 t its 24,005.13 needs (24,015.04 net), the second all 100 t it has
    assert (sale.cash_to_lender_fen, sale.amount_due_fen, sale.order.quantity) == (0, DUE_FEN, 302)
    assert (all_of_it.amount_due_fen, all_of_it.order.quantity) == (480_000 + 103 + 500_000, 100)
    assert balance(ps.account, ps.cea) == (1000, 600)
    assert_reconciled()


def test_a_court_order_counts_the_cash_taken_first_against_the_debt(ps):
    loan = _defaulted_with_cash(ps)
    registry = ps.ex.market.registry_actor
    order = {"court_reference": "(2026) Jing 01 Zhi 1", "document_sha256": "a" * 64, "price_fen": 8000}
    with clock.pinned(at(ENFORCEMENT_DAY)):
        before = snapshot()
        with pytest.raises(DomainError) as refused:  # 300 t = 24,000.00 + the 8,000.00 cash > the debt
            pledge_enforce_court_order(actor=registry, loan=loan, units_to_lender=300, **order)
        assert refused.value.code == "pledge_enforcement_exceeds_debt"
        assert snapshot() == before
        enforcement = pledge_enforce_court_order(actor=registry, loan=loan, units_to_lender=200, **order)
    assert (enforcement.cash_to_lender_fen, enforcement.value_fen, enforcement.units_released) == (
        SUBSTITUTE_FEN,
        1_600_000,
        200,
    )
    assert balance(ps.bank_account, ps.ex.cny) == (SUBSTITUTE_FEN, 0)
    assert balance(ps.bank_account, ps.cea) == (200, 0)
    assert_reconciled()


def test_substitute_cash_over_http(ps):
    loan = ps.registered(500)
    borrower, bank = client_for(ps.borrower[2]), client_for(ps.bank[2])
    asked = borrower.post(
        f"/api/v1/pledges/{loan.pk}/compliance-release",
        {"quantity": 100, "year": YEAR, "substitute_cash": "8000.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="cr-1",
    )
    assert asked.status_code in (200, 201), asked.json()
    decided = bank.post(
        f"/api/v1/pledges/{loan.pk}/compliance-release/decide",
        {"consent": True},
        format="json",
        HTTP_IDEMPOTENCY_KEY="cr-2",
    )
    assert decided.status_code in (200, 201), decided.json()
    shown = bank.get(f"/api/v1/pledges/{loan.pk}").json()
    assert (shown["quantity"], shown["cash_collateral"], shown["collateral_value"], shown["ltv_bp"]) == (
        400,
        "8000.00",
        "40000.00",
        6000,
    )
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN, SUBSTITUTE_FEN)


def test_the_daily_valuation_counts_the_cash_held_and_records_the_units_at_the_price(ps):
    from exchange.models import PledgeValuation
    from exchange.services.pledges import pledges_value

    with clock.pinned(at(DAY)):
        loan = ps.registered(500)
        _release_against_cash(ps, loan)
    with clock.pinned(at(DAY + timedelta(days=1), 15, 40)):
        assert pledges_value() == 1
    loan = PledgeLoan.objects.get(pk=loan.pk)
    valuation = PledgeValuation.objects.get(loan=loan)
    assert (valuation.quantity, valuation.price_fen, valuation.value_fen) == (400, 8000, 400 * 8000)
    assert valuation.ltv_bp == 6000  # against the units and the cash held
    assert (loan.collateral_value_fen, loan.ltv_bp) == (400 * 8000 + SUBSTITUTE_FEN, 6000)


def test_the_pledge_and_exposure_csvs_show_the_cash_collateral_in_yuan(ps):
    import csv
    import io

    # Given a pledge with 8,000.00 yuan of cash held in place of 100 t
    loan = ps.registered(500)
    _release_against_cash(ps, loan)
    bank = client_for(ps.bank[2])

    # When the lender reads its loan book and its exposure as CSV
    book = bank.get("/api/v1/pledges/loan-book?format=csv")
    exposure = bank.get("/api/v1/pledges/exposure?format=csv")

    # Then both carry the cash, in yuan
    (row,) = csv.DictReader(io.StringIO(b"".join(book.streaming_content).decode("utf-8-sig")))
    assert (row["id"], row["cash_collateral"]) == (str(loan.pk), "8000.00")
    (totals,) = csv.DictReader(io.StringIO(b"".join(exposure.streaming_content).decode("utf-8-sig")))
    assert (totals["loans"], totals["cash_collateral"]) == ("1", "8000.00")
    assert bank.get("/api/v1/pledges/exposure").json()[0]["cash_collateral"] == "8000.00"


def test_enforcement_by_sale_is_refused_when_the_cash_already_covers_the_debt_and_nothing_moves(ps):
    # Given a defaulted pledge whose cash collateral (25,000.00) covers the debt (24,005.13)
    ps.ex.deposit(ps.account, 2_000_000)
    with clock.pinned(at(DAY)):
        loan = ps.registered(500, maturity_date=DAY + timedelta(days=1))
        _release_against_cash(ps, loan, cash_fen=2_500_000)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        loan = pledge_default(actor=ps.bank[2], loan=loan)

        # When the lender starts a sale
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)

    # Then it is refused with its code and figures, and nothing moved: no order, the cash still held
    assert (refused.value.code, refused.value.status) == ("pledge_debt_covered_by_cash", 409)
    assert refused.value.details == {"pledge": loan.pk, "debt": "24005.13", "cash_collateral": "25000.00"}
    assert snapshot() == before
    loan.refresh_from_db()
    assert (loan.status, loan.cash_collateral_fen) == (PledgeStatus.DEFAULTED, 2_500_000)
    assert not loan.enforcements.exists()
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN + 2_000_000, 2_500_000)
    assert balance(ps.bank_account, ps.ex.cny) == (0, 0)
