"""A settlement batch books one posting per account and asset: its net change, with the balance after."""

from __future__ import annotations

import pytest

from core import clock
from exchange.models import AccountKind, Hold, HoldStatus, Order, Posting
from exchange.services.settlement import settlement_run
from tests.helpers.ledger import assert_reconciled, balance, system
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = pytest.mark.django_db


def test_settlement_posts_each_accounts_net_change_once():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, s1_acc, s1 = ex.trader("Seller 1", units=1000)
        _, s2_acc, s2 = ex.trader("Seller 2", units=1000)
        _, b_acc, b = ex.trader("Buyer", cash_fen=100_000_000)
        ex.order(s1, s1_acc, "sell", 8000, 30)
        ex.order(s2, s2_acc, "sell", 8010, 20)
        for _ in range(5):
            ex.order(b, b_acc, "buy", 8010, 10)  # five orders, each its own hold, seven fills

        batch = settlement_run()

    postings = list(Posting.objects.filter(transaction=batch.transaction).order_by("id"))
    keys = [(p.account_id, p.asset_id) for p in postings]
    assert len(keys) == len(set(keys)) == 7  # CEA: 2 sellers, buyer; CNY: 2 sellers, buyer, fee account
    for p in postings:
        assert p.quantity != 0
        assert p.balance_after == balance(p.account, p.asset)[0]
    for asset in (ex.cea, ex.cny):
        assert sum(p.quantity for p in postings if p.asset_id == asset.pk) == 0
    by_key = {(p.account_id, p.asset_id): p.quantity for p in postings}
    assert by_key[(b_acc.pk, ex.cea.pk)] == 50
    assert by_key[(system(AccountKind.FEE).pk, ex.cny.pk)] == batch.fees_total_fen
    assert by_key[(b_acc.pk, ex.cny.pk)] == -(batch.cash_total_fen + sum(t.buyer_fee_fen for t in batch.trades.all()))
    assert_reconciled()


def test_a_buyers_orders_pay_in_one_posting_each_hold_ending_or_keeping_what_it_still_needs():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, s_acc, s = ex.trader("Seller", units=1000)
        _, b_acc, b = ex.trader("Buyer", cash_fen=100_000_000)
        ex.order(s, s_acc, "sell", 7900, 30)
        below = ex.order(b, b_acc, "buy", 8100, 10).order  # filled at 79.00: its surplus is released
        exact = ex.order(b, b_acc, "buy", 7900, 5).order  # filled at its limit: used up to the last fen
        rest = ex.order(b, b_acc, "buy", 8000, 50).order  # 15 filled, 35 still open
        rest_reserved = Hold.objects.get(order=rest).remaining

        batch = settlement_run()

    holds = {o.pk: Hold.objects.get(order__pk=o.pk) for o in (below, exact, rest)}
    assert (holds[below.pk].status, holds[below.pk].remaining) == (HoldStatus.RELEASED, 0)
    assert (holds[exact.pk].status, holds[exact.pk].remaining) == (HoldStatus.POSTED, 0)
    assert Order.objects.get(pk=rest.pk).status == "open"
    assert holds[rest.pk].status == HoldStatus.ACTIVE
    # The open order keeps what its 35 open tonnes may need; what its 15 filled tonnes cost is paid.
    paid = 30 * 7900 + sum(t.buyer_fee_fen for t in batch.trades.all())
    assert holds[rest.pk].remaining == rest_reserved - (
        15 * 7900 + sum(t.buyer_fee_fen for t in batch.trades.all() if t.buy_order_id == rest.pk)
    )
    assert balance(b_acc, ex.cny) == (100_000_000 - paid, holds[rest.pk].remaining)
    cash = Posting.objects.filter(transaction=batch.transaction, account=b_acc, asset=ex.cny)
    assert list(cash.values_list("quantity", flat=True)) == [-paid]
    assert batch.holds_released == 1
    assert_reconciled()
