"""Release for compliance against substitute collateral in cash: with the lender's consent the borrower's cash
is held under the pledge in place of the released units; the loan's collateral value and LTV count it;
enforcement takes the cash first, up to the debt (Civil Code arts. 436-438: never more to the lender than
the debt); the release of the pledge releases the cash hold."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import CollateralKind, EnforcementStatus, HoldStatus, PledgeLoan, PledgeStatus
from exchange.services.compliance import compliance_year_create, emissions_record, entities_cover
from exchange.services.pledges import (
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_release,
)
from exchange.services.pledges.compliance_release import (
    pledge_compliance_release_decide,
    pledge_compliance_release_request,
)
from exchange.services.settlement import settlement_run
from tests.helpers.api import client_for
from tests.helpers.ledger import assert_reconciled, balance, snapshot
from tests.helpers.pledges import DAY, at, make_pledges

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


def test_enforcement_by_sale_takes_the_cash_first_and_the_sale_pays_the_rest(ps):
    loan = _defaulted_with_cash(ps)
    _, buyer_acc, buyer = ps.ex.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        assert enforcement.cash_to_lender_fen == SUBSTITUTE_FEN
        assert balance(ps.bank_account, ps.ex.cny) == (SUBSTITUTE_FEN, 0)
        ps.ex.order(buyer, buyer_acc, "buy", 8000, 400)
        settlement_run()

    # 400 x 80.00 = 32,000.00 less 192.00 fee = 31,808.00: 16,005.13 to the lender, the rest the borrower's
    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.paid_to_lender_fen, enforcement.received_by_lender_fen) == (
        EnforcementStatus.COMPLETED,
        DUE_FEN - SUBSTITUTE_FEN,
        DUE_FEN,
    )
    assert balance(ps.bank_account, ps.ex.cny) == (DUE_FEN, 0)
    assert balance(ps.account, ps.ex.cny) == (CASH_FEN - SUBSTITUTE_FEN + 3_180_800 - (DUE_FEN - SUBSTITUTE_FEN), 0)
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.ENFORCED
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
