"""Enforcement by sale on the national markets (CN-CEA), which run no continuous book: the pledged units are
offered as the borrower's sell listing under the market's rulebook (listing agreement; a public block listing
from the block minimum), counterparties pick it, and the ordinary settlement pays the lender first, to the
debt; the surplus is the borrower's cash; unsold units stay pledged for another round (Civil Code arts.
436-438)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import (
    AuditEvent,
    EnforcementStatus,
    HoldKind,
    Order,
    OrderMode,
    OrderStatus,
    PledgeEnforcement,
    PledgeStatus,
    TradingMode,
)
from exchange.services.agreements import block_accept, listing_pick
from exchange.services.orders import order_cancel
from exchange.services.pledges import pledge_enforce, pledge_sales_complete
from exchange.services.session_close import orders_cancel_at_close
from exchange.services.settlement import settlement_run
from tests.helpers.ledger import assert_reconciled, balance, blocks, snapshot
from tests.helpers.pledges import DAY, at, make_national_pledges

pytestmark = pytest.mark.django_db

ENFORCEMENT_DAY = DAY + timedelta(days=2)  # Friday 2026-11-27: the loan matured on Thursday
INTEREST_FEN = 513  # 24,000.00 yuan at 3.85 % for 2 days, actual/360: 5.1333 -> 5.13
DUE_FEN = 2_400_000 + INTEREST_FEN


@pytest.fixture
def ps():
    return make_national_pledges()


def _settle(ps, day=ENFORCEMENT_DAY):
    """The registry's settlement after the close (the national markets settle on T)."""
    with clock.pinned(at(day, 15, 5)):
        return settlement_run(actor=ps.ex.market.registry_actor)


def _buyer(ps, cash_fen: int = 10_000_000):
    return ps.ex.trader("Buyer", cash_fen=cash_fen)


def test_a_covering_sale_pays_the_lender_the_debt_and_the_surplus_to_the_borrower(ps):
    loan = ps.defaulted(500)
    _, buyer_acc, buyer = _buyer(ps)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)

        listing = enforcement.order
        assert (
            listing.side,
            listing.trading_mode,
            listing.mode,
            listing.quantity,
            listing.price_fen,
            listing.participant_id,
            listing.account_id,
            listing.partial_allowed,
        ) == ("sell", TradingMode.LISTING, OrderMode.LISTING, 302, 8000, ps.borrower[0].pk, ps.account.pk, True)
        # only what the debt needs is offered: 302 x 80.00 less the seller's fee 0.6 % (144.96) = 24,015.04
        # pays 24,005.13 (301 t would give 23,935.52); the listing took over those blocks, the other 198 t
        # stay frozen by the pledge's own hold
        assert listing.hold.kind == HoldKind.PLEDGE
        assert balance(ps.account, ps.cea) == (1000, 500)
        assert blocks(ps.cea, ps.account)[:2] == [
            (1, 302, ps.account.number, "held"),
            (303, 500, ps.account.number, "held"),
        ]
        assert AuditEvent.objects.filter(action="listing.post", object_id=str(listing.pk)).count() == 1

        listing_pick(actor=buyer, account=buyer_acc, listing=listing, client_order_id="pick-1")
    _settle(ps)

    # 302 x 80.00 = 24,160.00 less the seller's fee 0.6 % (144.96) = 24,015.04:
    # the lender gets the debt 24,005.13 and not a fen more; the borrower the surplus 9.91, and the 198 t
    # the sale did not need are released
    assert balance(ps.bank_account, ps.ex.cny) == (DUE_FEN, 0)
    assert balance(ps.account, ps.ex.cny) == (2_401_504 - DUE_FEN, 0) == (991, 0)
    assert balance(ps.bank_account, ps.cea) == (0, 0)
    assert balance(buyer_acc, ps.cea) == (302, 0)
    assert balance(ps.account, ps.cea) == (698, 0)
    enforcement.refresh_from_db()
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.ENFORCED
    assert (
        enforcement.status,
        enforcement.amount_due_fen,
        enforcement.units_sold,
        enforcement.proceeds_fen,
        enforcement.paid_to_lender_fen,
        enforcement.surplus_fen,
        enforcement.shortfall_fen,
        enforcement.units_to_lender,
        enforcement.units_released,
    ) == (EnforcementStatus.COMPLETED, DUE_FEN, 302, 2_401_504, DUE_FEN, 991, 0, 0, 198)
    assert_reconciled()


def test_a_sale_that_sells_nothing_leaves_the_units_pledged(ps):
    loan = ps.defaulted(500)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8800)
    with clock.pinned(at(ENFORCEMENT_DAY, 11, 30)):
        assert orders_cancel_at_close() == 1
    assert Order.objects.get(pk=enforcement.order_id).status == OrderStatus.CANCELLED
    _settle(ps)
    with clock.pinned(at(ENFORCEMENT_DAY, 15, 40)):
        pledge_sales_complete()

    assert balance(ps.bank_account, ps.cea) == (0, 0)
    assert balance(ps.bank_account, ps.ex.cny) == (0, 0)
    # 275 t offered (275 x 88.00 less the fee pays the debt): unsold, they stay pledged with the 225 t the
    # sale did not offer
    assert balance(ps.account, ps.cea) == (1000, 500)
    assert [(first, last, state) for first, last, _, state in blocks(ps.cea, ps.account)] == [
        (1, 275, "held"),
        (276, 500, "held"),
        (501, 1000, "available"),
    ]
    loan.refresh_from_db()
    enforcement.refresh_from_db()
    assert (loan.status, loan.quantity) == (PledgeStatus.DEFAULTED, 500)
    assert (enforcement.order.quantity, enforcement.status, enforcement.units_unsold, enforcement.shortfall_fen) == (
        275,
        EnforcementStatus.COMPLETED,
        275,
        DUE_FEN,
    )
    assert loan.collateral.order_by("id").last().kind == "unsold"
    assert_reconciled()


def test_a_partial_pick_pays_the_lender_and_another_round_sells_the_rest(ps):
    loan = ps.defaulted(500)
    _, buyer_acc, buyer = _buyer(ps)
    with clock.pinned(at(ENFORCEMENT_DAY)):
        first = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        listing_pick(actor=buyer, account=buyer_acc, listing=first.order, quantity=300, client_order_id="pick-1")
    with clock.pinned(at(ENFORCEMENT_DAY, 11, 30)):
        orders_cancel_at_close()
    _settle(ps)  # the listing has ended: settlement completes the round

    # 300 x 80.00 less 144.00 fee = 23,856.00, all of it to the lender (owed 24,005.13); of the 302 t offered
    # 2 t are unsold, and they stay pledged with the 198 t the sale did not offer
    assert balance(ps.bank_account, ps.ex.cny) == (2_385_600, 0)
    assert balance(ps.account, ps.ex.cny) == (0, 0)
    assert balance(ps.bank_account, ps.cea) == (0, 0)  # never the unsold units
    assert balance(ps.account, ps.cea) == (700, 200)
    first.refresh_from_db()
    loan.refresh_from_db()
    assert (first.order.quantity, first.status, first.units_sold, first.units_unsold, first.shortfall_fen) == (
        302,
        EnforcementStatus.COMPLETED,
        300,
        2,
        DUE_FEN - 2_385_600,
    )
    assert (loan.status, loan.quantity) == (PledgeStatus.DEFAULTED, 200)

    monday = ENFORCEMENT_DAY + timedelta(days=3)
    with clock.pinned(at(monday)):
        second = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        # 156.83 still owed: 2 t (2 x 80.00 less 0.96 fee = 159.04) and no more
        assert second.amount_due_fen == 15_683
        assert (second.order.trading_mode, second.order.quantity) == (TradingMode.LISTING, 2)
        listing_pick(actor=buyer, account=buyer_acc, listing=second.order, client_order_id="pick-2")
    _settle(ps, monday)
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
    paid = sum(e.paid_to_lender_fen for e in PledgeEnforcement.objects.filter(loan=loan))
    assert paid == first.amount_due_fen + (second.amount_due_fen - first.shortfall_fen)  # the debt, no more
    assert_reconciled()


def test_the_listing_cannot_be_cancelled_and_follows_the_listing_rules(ps):
    loan = ps.defaulted(500)
    with clock.pinned(at(ENFORCEMENT_DAY, 12)):  # between the sessions
        before = snapshot()
        with pytest.raises(DomainError) as closed:
            pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        assert closed.value.code == "market_closed"
        assert snapshot() == before
    with clock.pinned(at(ENFORCEMENT_DAY)):
        with pytest.raises(DomainError) as band:
            pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8900)  # band 72.00-88.00
        assert band.value.code == "price_out_of_band"
        assert snapshot() == before
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        with pytest.raises(DomainError) as refused:
            order_cancel(actor=ps.borrower[2], order=enforcement.order)
        assert refused.value.code == "order_not_cancellable"
    assert balance(ps.account, ps.cea) == (1000, 500)


def test_a_sale_from_the_block_minimum_is_a_public_block_listing_accepted_whole():
    ps = make_national_pledges(units=200_000)
    loan = ps.defaulted(200_000, principal_fen=1_120_000_000)  # 11,200,000.00 yuan: LTV 70 % at 80.00
    _, buyer_acc, buyer = _buyer(ps, cash_fen=2_000_000_000)
    with clock.pinned(at(ENFORCEMENT_DAY)):  # 10:00: block agreement trades 13:00-15:00 only
        with pytest.raises(DomainError) as closed:
            pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        assert closed.value.code == "market_closed"
    with clock.pinned(at(ENFORCEMENT_DAY, 13, 30)):
        enforcement = pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        offer = enforcement.order
        # what the debt needs (net 79.52 a tonne after the 0.6 % fee), at or above the block minimum
        needed = -(-enforcement.amount_due_fen // 7952)
        assert 100_000 <= needed < 200_000
        assert (offer.trading_mode, offer.counterparty_id, offer.partial_allowed, offer.quantity) == (
            TradingMode.BLOCK,
            None,
            False,
            needed,
        )
        block_accept(actor=buyer, account=buyer_acc, offer=offer, client_order_id="take-1")
    _settle(ps)
    enforcement.refresh_from_db()
    loan.refresh_from_db()
    proceeds = needed * 8000 - needed * 8000 * 60 // 10_000
    assert (enforcement.units_sold, enforcement.units_released) == (needed, 200_000 - needed)
    assert balance(ps.account, ps.cea) == (200_000 - needed, 0)
    assert loan.status == PledgeStatus.ENFORCED
    assert balance(ps.bank_account, ps.ex.cny) == (enforcement.amount_due_fen, 0)
    assert balance(ps.account, ps.ex.cny) == (proceeds - enforcement.amount_due_fen, 0)
    assert enforcement.paid_to_lender_fen == enforcement.amount_due_fen
    assert_reconciled()
