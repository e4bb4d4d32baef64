"""Cash from sales buys on T and is withdrawn from T+1: a buy draws on the proceeds of unsettled sales (paid from
the counterparty's held cash), settlement pays only the rest, and the advanced cash can't leave before it settles."""

from __future__ import annotations

from datetime import date

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import ProceedsAdvance, SettlementStatus
from exchange.services.agreements import listing_pick, listing_post
from exchange.services.issuance import cea_vintage_create
from exchange.services.settlement import settlement_run
from exchange.services.trading import asset_list, cash_asset, cash_withdraw, order_cancel
from tests.exchange.services.test_agreements import WEDNESDAY, National, at
from tests.helpers.concurrency import attempt, run_workers
from tests.helpers.ledger import assert_reconciled, balance, snapshot

pytestmark = pytest.mark.django_db

THURSDAY = date(2026, 11, 26)
PROCEEDS = 800_000 - 4_800  # 100 t at 80.00 less the seller's 0.6 %
COST_50 = 400_000 + 2_400  # 50 t at 80.00 and the buyer's 0.6 %


def _sold(nat: National):
    """The seller (no cash) sells 100 t at 80.00 on Wednesday morning to a buyer with cash."""
    _, s_acc, seller = nat.trader("Seller", units=1000)
    _, b_acc, buyer = nat.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="s1"
        )
        listing_pick(actor=buyer, account=b_acc, listing=listing, client_order_id="b1")
    return s_acc, seller, b_acc


def test_cash_from_a_sale_buys_the_same_day_and_settlement_pays_the_rest():
    nat = National()
    s_acc, seller, b_acc = _sold(nat)
    _, o_acc, other = nat.trader("Other seller", units=500)
    assert balance(s_acc, cash_asset()) == (0, 0)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=50, client_order_id="o1"
        )
        bought = listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s2")

    assert [t.quantity for t in bought.trades] == [50]
    # The cost moved from the buyer's held cash to the seller, and is held for the seller's purchase.
    assert balance(s_acc, cash_asset()) == (COST_50, COST_50)
    assert balance(b_acc, cash_asset()) == (10_000_000 - COST_50, 804_800 - COST_50)
    assert list(ProceedsAdvance.objects.values_list("account_id", "amount_fen")) == [(s_acc.pk, COST_50)]
    assert_reconciled()

    with clock.pinned(at(WEDNESDAY, 15, 5)):
        batch = settlement_run(actor=nat.market.registry_actor)
    assert (batch.status, batch.trades_count) == (SettlementStatus.COMPLETED, 2)
    assert balance(s_acc, cash_asset()) == (PROCEEDS - COST_50, 0)
    assert balance(s_acc, nat.cea) == (950, 0)
    assert balance(b_acc, cash_asset()) == (10_000_000 - 804_800, 0)
    assert balance(b_acc, nat.cea) == (100, 0)
    assert balance(o_acc, cash_asset()) == (400_000 - 2_400, 0)
    assert_reconciled()


def test_a_buy_beyond_the_unsettled_proceeds_is_refused_and_advances_nothing():
    nat = National()
    s_acc, seller, _ = _sold(nat)
    _, o_acc, other = nat.trader("Other seller", units=500)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="o1"
        )
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s2")  # 804,800 > 795,200
    assert refused.value.code == "insufficient_available"
    assert snapshot() == before
    assert not ProceedsAdvance.objects.exists()


def test_advanced_cash_is_not_withdrawable_until_its_sale_settles():
    nat = National()
    s_acc, seller, _ = _sold(nat)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        bid = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="buy", price_fen=8000, quantity=50, client_order_id="s2"
        )
        order_cancel(actor=seller, order=bid)
        assert balance(s_acc, cash_asset()) == (COST_50, 0)
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            cash_withdraw(actor=nat.operator, account=s_acc, amount_fen=1, reference="w1")
    assert (refused.value.code, refused.value.status) == ("proceeds_not_withdrawable", 409)
    assert refused.value.details["unsettled_proceeds"] == "4024.00"
    assert snapshot() == before

    with clock.pinned(at(WEDNESDAY, 15, 5)):
        settlement_run(actor=nat.market.registry_actor)
    assert balance(s_acc, cash_asset()) == (PROCEEDS, 0)
    with clock.pinned(at(THURSDAY, 9, 30)):
        cash_withdraw(actor=nat.operator, account=s_acc, amount_fen=PROCEEDS, reference="w2")
    assert balance(s_acc, cash_asset()) == (0, 0)
    assert_reconciled()


def test_sales_proceeds_before_any_advance_are_not_in_the_balance_to_withdraw():
    nat = National()
    s_acc, _, _ = _sold(nat)
    with clock.pinned(at(WEDNESDAY, 11)), pytest.raises(DomainError) as refused:
        cash_withdraw(actor=nat.operator, account=s_acc, amount_fen=PROCEEDS, reference="w1")
    assert refused.value.code == "insufficient_available"


@pytest.mark.django_db(transaction=True)
def test_two_buys_at_once_on_two_books_draw_on_the_proceeds_once():
    nat = National()
    s_acc, seller, _ = _sold(nat)  # 795,200 fen of unsettled proceeds, no cash
    with clock.pinned(at(WEDNESDAY, 9)):
        cea25 = cea_vintage_create(actor=nat.market.registry_actor, vintage=2025)
        asset_list(actor=nat.operator, asset=cea25, reference_price_fen=8000)
    assets = [nat.cea, cea25]
    with clock.pinned(at(WEDNESDAY, 10, 30)):

        def work(i: int) -> list[str]:
            return [
                attempt(
                    lambda: listing_post(
                        actor=seller,
                        account=s_acc,
                        asset=assets[i],
                        side="buy",
                        price_fen=8000,
                        quantity=50,  # 402,400 fen each: both together exceed the proceeds
                        client_order_id=f"bid-{i}",
                    )
                )
            ]

        outcomes = run_workers(2, work)

    assert sorted(outcomes) == ["insufficient_available", "ok"]
    assert sum(ProceedsAdvance.objects.values_list("amount_fen", flat=True)) == COST_50
    assert balance(s_acc, cash_asset()) == (COST_50, COST_50)
    assert_reconciled()
