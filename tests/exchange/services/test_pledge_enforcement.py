"""Enforcing a defaulted pledge lawfully (Civil Code arts. 428, 436-438): by agreement (units worth the debt
and no more to the lender at an agreed value within the band, the rest back to the borrower), by sale on the
exchange (the lender paid first from the settled proceeds, to the fen; the surplus the borrower's; unsold
units stay pledged), or by court order (executed by the registry). No path gives the lender more than the debt."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import clock
from core.errors import DomainError
from exchange.models import (
    AccountKind,
    EnforcementStatus,
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OrderMode,
    OrderStatus,
    PledgeStatus,
    SerialMovement,
    Transaction,
    TransactionKind,
)
from exchange.services.markets import rulebook_publish
from exchange.services.orders import order_cancel
from exchange.services.pledges import (
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_enforcement_decline,
    pledge_sales_complete,
)
from exchange.services.session_close import orders_cancel_at_close
from exchange.services.settlement import settlement_run
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import assert_reconciled, balance, blocks, snapshot, system
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]

ENFORCEMENT_DAY = DAY + timedelta(days=2)  # Friday 2026-11-27: the loan matured on Thursday
# Interest on 24,000.00 yuan at 3.85% for the 2 days from Wednesday, actual/360: 5.1333 yuan -> 5.13
INTEREST_FEN = 513
DUE_FEN = 2_400_000 + INTEREST_FEN
# actual/360: 14,400.00 yuan (300 t) for 2 days: 3.08; 24,000.00 yuan for 5 days: 12.8333 -> 12.83
INTEREST_300_FEN = 308
INTEREST_5_DAYS_FEN = 1283


@pytest.fixture
def ps():
    return make_pledges()


@pytest.fixture
def enforcement_day():
    with clock.pinned(at(ENFORCEMENT_DAY)):
        yield


# --- by agreement -----------------------------------------------------------------------------------------
def _agree(ps, loan, price_fen: int, costs_fen: int = 0):
    pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=price_fen, costs_fen=costs_fen)
    return pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)


def test_by_agreement_the_lender_gets_units_worth_the_debt_and_no_more_and_the_rest_are_released(ps):
    # The borrower's units are scattered: 1-100 gone, 401-700 pledged by name, then a top-up (lowest: 101-150).
    transfer_create(
        actor=ps.borrower[2], source=ps.account, destination=ps.ex.trader("Other")[1], asset=ps.cea, quantity=100
    )
    loan = ps.registered(300, serials=(401, 700), maturity_date=DAY + timedelta(days=1))
    ps.top_up(loan, 50)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        pledge_default(actor=ps.bank[2], loan=loan)
        proposal = pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=7500, costs_fen=1000)
        # proposed: nothing has moved yet
        assert (proposal.status, balance(ps.account, ps.cea)) == (EnforcementStatus.PROPOSED, (900, 350))

        enforcement = pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)

    # debt: principal 300 x 48.00 = 14,400.00 + 2 days' interest 3.08 + costs 10.00 = 14,413.08 yuan;
    # at 75.00 a tonne that covers 192 whole tonnes (14,400.00); the other 158 go back to the borrower
    debt = 1_440_000 + INTEREST_300_FEN + 1000
    assert (enforcement.amount_due_fen, enforcement.units_to_lender, enforcement.value_fen) == (debt, 192, 1_440_000)
    assert enforcement.value_fen <= enforcement.amount_due_fen < enforcement.value_fen + 7500
    assert (enforcement.units_released, enforcement.shortfall_fen) == (158, debt - 1_440_000)
    # the pledge's holds are taken in order, lowest blocks first: 401-592 go to the lender
    assert blocks(ps.cea, ps.bank_account) == [(401, 592, ps.bank_account.number, "available")]
    assert balance(ps.bank_account, ps.cea) == (192, 0)
    assert balance(ps.account, ps.cea) == (900 - 192, 0)
    txn = enforcement.transaction
    assert txn.kind == TransactionKind.PLEDGE_ENFORCEMENT
    assert list(SerialMovement.objects.filter(transaction=txn).values_list("first", "last")) == [(401, 592)]
    loan.refresh_from_db()
    assert (loan.status, loan.closed_on, loan.interest_fen) == (
        PledgeStatus.ENFORCED,
        ENFORCEMENT_DAY,
        INTEREST_300_FEN,
    )
    assert_reconciled()


def test_by_agreement_a_debt_above_the_collateral_takes_every_unit_and_leaves_a_shortfall(ps, enforcement_day):
    loan = ps.defaulted(500)

    enforcement = _agree(ps, loan, 7200)  # the band's floor

    # 24,005.13 yuan due at 72.00 a tonne: 333 whole tonnes (23,976.00); 167 go back
    assert (enforcement.units_to_lender, enforcement.value_fen, enforcement.units_released) == (333, 2_397_600, 167)
    assert enforcement.shortfall_fen == DUE_FEN - 2_397_600
    assert balance(ps.bank_account, ps.cea) == (333, 0)
    assert_reconciled()


def test_by_agreement_units_worth_less_than_the_debt_all_go_and_the_rest_is_a_claim(ps, enforcement_day):
    loan = ps.defaulted(100, principal_fen=480_000)  # LTV 60% at 80.00

    enforcement = _agree(ps, loan, 8000, costs_fen=400_000)  # costs of 4,000.00 take the debt above 8,000.00

    assert (enforcement.units_to_lender, enforcement.value_fen, enforcement.units_released) == (100, 800_000, 0)
    assert enforcement.amount_due_fen > enforcement.value_fen
    assert enforcement.shortfall_fen == enforcement.amount_due_fen - 800_000
    assert balance(ps.account, ps.cea) == (900, 0)


def test_an_agreed_price_outside_the_band_is_refused_and_nothing_changes(ps, enforcement_day):
    loan = ps.defaulted(500)

    for price in (7199, 8801):
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=price)
        assert refused.value.code == "pledge_valuation_out_of_band"
        assert refused.value.details["reference_price"] == "80.00"
        assert (refused.value.details["lowest"], refused.value.details["highest"]) == ("72.00", "88.00")
        assert snapshot() == before


def test_the_band_is_the_market_rulebooks_in_effect(ps, enforcement_day):
    loan = ps.defaulted(500)
    rulebook_publish(
        actor=ps.ex.market.registry_actor,
        market=ps.cea.market,
        effective_from=ENFORCEMENT_DAY,
        changes={"pledge_valuation_band_bp": 500},
    )

    with pytest.raises(DomainError) as refused:
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=7500)

    assert (refused.value.code, refused.value.details["lowest"]) == ("pledge_valuation_out_of_band", "76.00")


def test_only_the_borrower_agrees_and_a_declined_valuation_moves_nothing(ps, enforcement_day):
    loan = ps.defaulted(500)
    pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        pledge_enforcement_agree(actor=ps.bank[2], loan=loan)
    assert refused.value.code == "pledge_borrower_only"
    with pytest.raises(DomainError) as again:
        pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
    assert again.value.code == "pledge_enforcement_in_progress"
    assert snapshot() == before

    declined = pledge_enforcement_decline(actor=ps.borrower[2], loan=loan)

    assert declined.status == EnforcementStatus.DECLINED
    assert balance(ps.account, ps.cea) == (1000, 500)
    with pytest.raises(DomainError) as nothing:
        pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)
    assert nothing.value.code == "pledge_no_valuation_proposed"
    # the lender may now sell instead
    assert pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000).status == "selling"


def test_the_old_transfer_of_everything_is_gone(ps, enforcement_day):
    loan = ps.defaulted(500)
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        pledge_enforce(actor=ps.bank[2], loan=loan, method="transfer")

    assert (refused.value.code, refused.value.status) == ("invalid", 400)
    assert snapshot() == before


# --- by court order ------------------------------------------------------------------------------------------
DOCUMENT = hashlib.sha256(b"(2026) Jing 0105 Min Chu 12345").hexdigest()


def test_the_registry_executes_a_court_order(ps, enforcement_day):
    loan = ps.defaulted(500)

    enforcement = pledge_enforce_court_order(
        actor=ps.ex.market.registry_actor,
        loan=loan,
        court_reference="(2026) Jing 0105 Min Chu 12345",
        document_sha256=DOCUMENT.upper(),
        units_to_lender=250,
        price_fen=9000,
    )

    assert (enforcement.method, enforcement.status, enforcement.court_document_sha256) == (
        "court",
        EnforcementStatus.COMPLETED,
        DOCUMENT,
    )
    assert (enforcement.units_to_lender, enforcement.value_fen, enforcement.units_released) == (250, 2_250_000, 250)
    assert blocks(ps.cea, ps.bank_account) == [(1, 250, ps.bank_account.number, "available")]
    assert balance(ps.account, ps.cea) == (750, 0)
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.ENFORCED
    assert_reconciled()


def test_a_court_order_is_the_registrys_and_never_gives_more_than_the_debt(ps, enforcement_day):
    loan = ps.defaulted(500)
    order = {
        "court_reference": "(2026) Jing 0105 Min Chu 1",
        "document_sha256": DOCUMENT,
        "units_to_lender": 301,
        "price_fen": 8000,
    }
    before = snapshot()

    with pytest.raises(DomainError) as lender:
        pledge_enforce_court_order(actor=ps.bank[2], loan=loan, **order)
    with pytest.raises(DomainError) as too_much:
        pledge_enforce_court_order(actor=ps.ex.market.registry_actor, loan=loan, **order)
    with pytest.raises(DomainError) as unnamed:
        pledge_enforce_court_order(
            actor=ps.ex.market.registry_actor, loan=loan, **{**order, "document_sha256": "abc", "units_to_lender": 1}
        )

    assert (lender.value.code, lender.value.status) == ("wrong_participant_kind", 403)
    assert too_much.value.code == "pledge_enforcement_exceeds_debt"  # 301 x 80.00 = 24,080.00 > 24,005.06
    assert (unnamed.value.code, unnamed.value.status) == ("invalid_court_order", 400)
    assert snapshot() == before


# --- by sale -------------------------------------------------------------------------------------------------
def _buyer(ps, cash_fen: int = 10_000_000):
    return ps.ex.trader("Buyer", cash_fen=cash_fen)


def test_sale_pays_the_lender_first_and_the_surplus_stays_with_the_borrower(ps, enforcement_day):
    loan = ps.defaulted(500)
    _, buyer_acc, buyer = _buyer(ps)

    enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)

    order = enforcement.order
    # only what the debt needs: 302 x 80.00 less the 0.6 % seller's fee = 24,015.04 pays 24,005.13
    # (301 t would give 23,935.52)
    assert (order.side, order.mode, order.quantity, order.price_fen, order.participant_id, order.account_id) == (
        "sell",
        OrderMode.LISTING,
        302,
        8000,
        ps.borrower[0].pk,
        ps.account.pk,
    )
    # the order took over the blocks it offers: still frozen, now by the sale's hold; the other 198 t stay
    # frozen by the pledge's own hold
    assert balance(ps.account, ps.cea) == (1000, 500)
    assert blocks(ps.cea, ps.account)[:2] == [
        (1, 302, ps.account.number, "held"),
        (303, 500, ps.account.number, "held"),
    ]
    assert order.hold.kind == HoldKind.PLEDGE
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.DEFAULTED

    ps.ex.order(buyer, buyer_acc, "buy", 8000, 500)  # fills the 302 t offered; the rest of the bid rests
    settlement_run()

    # turnover 302 x 80.00 = 24,160.00; the borrower bears the seller's fee 0.6% = 144.96
    # net 24,015.04: the lender gets principal + interest 24,005.13, the borrower the rest 9.91
    assert balance(ps.bank_account, ps.ex.cny) == (DUE_FEN, 0) == (2_400_513, 0)
    assert balance(ps.account, ps.ex.cny) == (2_416_000 - 14_496 - DUE_FEN, 0) == (991, 0)
    assert balance(buyer_acc, ps.ex.cny)[0] == 10_000_000 - 2_416_000 - 14_496
    assert balance(system(AccountKind.FEE), ps.ex.cny) == (28_992, 0)
    assert blocks(ps.cea, buyer_acc) == [(1, 302, buyer_acc.number, "available")]
    assert balance(ps.account, ps.cea) == (698, 0)  # the 198 t not offered are released with the debt paid
    enforcement.refresh_from_db()
    loan.refresh_from_db()
    assert (loan.status, loan.closed_on, loan.interest_fen) == (PledgeStatus.ENFORCED, ENFORCEMENT_DAY, INTEREST_FEN)
    assert (
        enforcement.status,
        enforcement.units_sold,
        enforcement.proceeds_fen,
        enforcement.fees_fen,
        enforcement.paid_to_lender_fen,
        enforcement.surplus_fen,
        enforcement.shortfall_fen,
        enforcement.units_to_lender,
        enforcement.units_released,
    ) == (EnforcementStatus.COMPLETED, 302, 2_401_504, 14_496, DUE_FEN, 991, 0, 0, 198)
    payment = Transaction.objects.filter(kind=TransactionKind.PLEDGE_ENFORCEMENT).get()
    assert list(payment.postings.order_by("quantity").values_list("account_id", "quantity")) == [
        (ps.account.pk, -DUE_FEN),
        (ps.bank_account.pk, DUE_FEN),
    ]
    assert_reconciled()


def test_a_partial_sale_short_of_the_debt_pays_all_its_proceeds_and_the_unsold_units_stay_pledged(ps, enforcement_day):
    loan = ps.defaulted(500)
    _, buyer_acc, buyer = _buyer(ps)
    enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
    ps.ex.order(buyer, buyer_acc, "buy", 8000, 300)

    settlement_run()  # mid-session, the order still open for 200 t

    # 300 x 80.00 = 24,000.00 less 144.00 fee = 23,856.00, all of it to the lender (owed 24,005.13)
    assert balance(ps.bank_account, ps.ex.cny) == (2_385_600, 0)
    assert balance(ps.account, ps.ex.cny) == (0, 0)
    assert balance(ps.account, ps.cea) == (700, 200)  # the unsold 200 stay frozen
    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.units_sold, enforcement.paid_to_lender_fen) == ("selling", 300, 2_385_600)

    with clock.pinned(at(ENFORCEMENT_DAY, 11, 30)):
        orders_cancel_at_close()
    # the session close ends the order but does not free the pledged units
    assert Order.objects.get(pk=enforcement.order_id).status == OrderStatus.CANCELLED
    assert balance(ps.account, ps.cea) == (700, 200)

    with clock.pinned(at(ENFORCEMENT_DAY, 15, 40)):
        assert pledge_sales_complete() == 1
        assert pledge_sales_complete() == 0

    # the lender gets no unit: the unsold 200 stay frozen under the pledge for another round
    # (2 t of the 302 offered unsold, and the 198 t the sale did not offer)
    assert balance(ps.bank_account, ps.cea) == (0, 0)
    assert balance(ps.account, ps.cea) == (700, 200)
    assert blocks(ps.cea, ps.account)[:2] == [
        (301, 302, ps.account.number, "held"),
        (303, 500, ps.account.number, "held"),
    ]
    enforcement.refresh_from_db()
    loan.refresh_from_db()
    assert (loan.status, loan.quantity) == (PledgeStatus.DEFAULTED, 200)
    assert (enforcement.status, enforcement.units_to_lender, enforcement.units_unsold, enforcement.units_released) == (
        EnforcementStatus.COMPLETED,
        0,
        2,
        0,
    )
    assert enforcement.shortfall_fen == DUE_FEN - 2_385_600 == 14_913
    assert loan.collateral.order_by("id").last().kind == "unsold"
    assert_reconciled()

    # a second round sells what the rest of the debt needs (156.83: 2 t, net 159.04): the lender is paid what
    # is still owed, the surplus is the borrower's, and the 198 t left are released
    with clock.pinned(at(ENFORCEMENT_DAY + timedelta(days=3))):  # Monday
        second = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        assert second.amount_due_fen == 14_913 + INTEREST_5_DAYS_FEN - INTEREST_FEN == 15_683
        assert second.order.quantity == 2
        ps.ex.order(buyer, buyer_acc, "buy", 8000, 200)
        settlement_run()
    second.refresh_from_db()
    loan.refresh_from_db()
    assert (loan.status, second.units_sold, second.paid_to_lender_fen, second.units_released) == (
        PledgeStatus.ENFORCED,
        2,
        second.amount_due_fen,
        198,
    )
    assert balance(ps.bank_account, ps.ex.cny) == (2_385_600 + second.amount_due_fen, 0)
    assert balance(ps.account, ps.ex.cny) == (2 * 8000 - 96 - second.amount_due_fen, 0)
    assert balance(ps.account, ps.cea) == (698, 0)
    assert_reconciled()


def test_a_partial_sale_that_covers_the_debt_gives_the_unsold_units_back(ps, enforcement_day):
    loan = ps.defaulted(500, principal_fen=1_000_000)  # 10,000.00 yuan; 2 days' interest 2.14 (actual/360)
    _, buyer_acc, buyer = _buyer(ps)
    ps.ex.order(buyer, buyer_acc, "buy", 8800, 120)  # a bid above the lender's price
    enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
    assert enforcement.order.quantity == 126  # 10,002.14 at 80.00 less the fee: 126 t (net 10,019.52)
    with clock.pinned(at(ENFORCEMENT_DAY, 11, 30)):
        orders_cancel_at_close()  # ended before settlement: settlement completes it

    settlement_run()

    # 120 t at 88.00 = 10,560.00 less 63.36 fee = 10,496.64 covers the debt: the 6 t unsold and the 374 t
    # never offered go back
    assert balance(ps.bank_account, ps.ex.cny) == (1_000_214, 0)
    assert balance(ps.account, ps.ex.cny) == (1_049_664 - 1_000_214, 0)
    assert balance(ps.account, ps.cea) == (880, 0)
    assert blocks(ps.cea, ps.account) == [(121, 1000, ps.account.number, "available")]
    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.units_released, enforcement.units_to_lender) == ("completed", 380, 0)
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.ENFORCED
    assert_reconciled()


def test_a_sale_that_sells_nothing_leaves_the_units_pledged(ps, enforcement_day):
    loan = ps.defaulted(500)
    pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8800)
    with clock.pinned(at(ENFORCEMENT_DAY, 15, 0)):
        orders_cancel_at_close()
    settlement_run()

    with clock.pinned(at(ENFORCEMENT_DAY, 15, 40)):
        pledge_sales_complete()

    # the 275 t offered (what the debt needs at 88.00) stay pledged unsold, with the 225 t not offered
    assert balance(ps.bank_account, ps.cea) == (0, 0)
    assert balance(ps.account, ps.cea) == (1000, 500)
    assert [b[3] for b in blocks(ps.cea, ps.account)] == ["held", "held", "available"]
    loan.refresh_from_db()
    assert (loan.status, loan.quantity, loan.enforcement.units_unsold, loan.enforcement.shortfall_fen) == (
        PledgeStatus.DEFAULTED,
        500,
        275,
        DUE_FEN,
    )
    assert_reconciled()


def test_the_sale_order_cannot_be_cancelled_by_the_borrower(ps, enforcement_day):
    loan = ps.defaulted(500)
    enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        order_cancel(actor=ps.borrower[2], order=enforcement.order)

    assert refused.value.code == "order_not_cancellable"
    assert snapshot() == before


def test_a_sale_follows_the_market_rules(ps, enforcement_day):
    loan = ps.defaulted(500)

    for moment, price, code in [
        (at(ENFORCEMENT_DAY, 12), 8000, "market_closed"),
        (at(ENFORCEMENT_DAY), 6000, "price_out_of_band"),
        (at(ENFORCEMENT_DAY), 8001, None),
    ]:
        before = snapshot()
        with clock.pinned(moment):
            if code is None:
                pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=price)
                continue
            with pytest.raises(DomainError) as refused:
                pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=price)
        assert refused.value.code == code
        assert snapshot() == before
    assert Order.objects.get().price_fen == 8001


def test_a_second_enforcement_during_the_sale_is_refused(ps, enforcement_day):
    loan = ps.defaulted(500)
    pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)

    assert refused.value.code == "pledge_enforcement_in_progress"
    assert snapshot() == before


def test_a_large_sale_is_a_block_order(ps, enforcement_day):
    ps.ex.market.give(ps.account, 200_000)
    loan = ps.defaulted(200_000, principal_fen=1_120_000_000)  # 11,200,000.00 yuan: LTV 70 % at 80.00

    enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=7000)

    # the debt at 70.00 less the 0.6 % fee (69.58 net a tonne) needs more than the block minimum
    needed = -(-enforcement.amount_due_fen // 6958)
    assert 100_000 <= needed < 200_000
    assert (enforcement.order.mode, enforcement.order.quantity) == (OrderMode.BLOCK, needed)
    assert balance(ps.account, ps.cea)[1] == 200_000  # the rest stays pledged


def test_the_sale_order_takes_over_every_pledge_hold_block_for_block(ps):
    with clock.pinned(at(DAY)):
        loan = ps.registered(300, serials=(201, 500), maturity_date=DAY + timedelta(days=1))
        ps.top_up(loan, 100)  # lowest available: 1-100
    old_holds = [c.hold_id for c in loan.collateral.all()]
    with clock.pinned(at(ENFORCEMENT_DAY)):
        pledge_default(actor=ps.bank[2], loan=loan)
        before = balance(ps.account, ps.cea)

        # costs that make the debt need every pledged unit (14,403.08 + 20,000.00 > 400 x 79.52)
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000, costs_fen=2_000_000)

    assert balance(ps.account, ps.cea) == before == (1000, 400)
    sale_hold = enforcement.sale_hold
    assert (sale_hold.kind, sale_hold.quantity, sale_hold.remaining, sale_hold.reference) == (
        HoldKind.PLEDGE,
        400,
        400,
        f"pledge:{loan.pk}:sale",
    )
    assert enforcement.order.hold_id == sale_hold.pk
    assert list(Hold.objects.filter(pk__in=old_holds).values_list("status", "remaining")) == [
        (HoldStatus.ENFORCED, 0),
        (HoldStatus.ENFORCED, 0),
    ]
    assert [(b.first, b.last, b.hold_id) for b in sale_hold.blocks.order_by("first")] == [
        (1, 100, sale_hold.pk),
        (201, 500, sale_hold.pk),
    ]
    assert_reconciled()


@given(
    owed=st.integers(min_value=1, max_value=10**12),
    price=st.integers(min_value=1, max_value=10**7),
    fee_bp=st.integers(min_value=0, max_value=9_999),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_units_a_sale_needs_are_the_fewest_whose_net_proceeds_pay_what_is_owed(owed, price, fee_bp):
    from exchange.services.instrument_rules import fee_for
    from exchange.services.pledges.enforcement import fewest_units_paying

    def net(units: int) -> int:
        return units * price - fee_for(units * price, fee_bp)

    units = fewest_units_paying(owed, price, fee_bp)

    assert units is not None
    assert units >= 1
    assert net(units) >= owed
    assert units == 1 or net(units - 1) < owed
