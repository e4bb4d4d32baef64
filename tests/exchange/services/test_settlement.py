"""Settlement: DvP for every unsettled trade, exactly once, in a fixed number of statements."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import DomainError
from exchange.models import AccountKind, Order, SettlementStatus, Trade
from exchange.services.orders import order_cancel
from exchange.services.settlement import settlement_run
from tests.helpers.ledger import assert_reconciled, balance, blocks, system
from tests.helpers.market import make_exchange

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ex():
    return make_exchange()


def test_settlement_delivers_units_and_pays_cash_with_fees(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 100)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)

    batch = settlement_run()

    # 100 t x 80.00 = 8,000.00 yuan; fee 0.6% = 48.00 yuan from each side.
    assert (batch.status, batch.trades_count, batch.units_total, batch.cash_total_fen, batch.fees_total_fen) == (
        SettlementStatus.COMPLETED,
        1,
        100,
        800_000,
        9_600,
    )
    assert balance(seller_acc, ex.cea) == (900, 0)
    assert balance(buyer_acc, ex.cea) == (100, 0)
    assert balance(seller_acc, ex.cny) == (800_000 - 4_800, 0)
    assert balance(buyer_acc, ex.cny) == (10_000_000 - 804_800, 0)
    assert balance(system(AccountKind.FEE), ex.cny) == (9_600, 0)
    assert blocks(ex.cea) == [(1, 100, buyer_acc.number, "available"), (101, 1000, seller_acc.number, "available")]
    assert set(Trade.objects.values_list("settlement_batch", flat=True)) == {batch.pk}
    assert_reconciled()


def test_a_second_run_settles_nothing_again(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 100)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)
    first = settlement_run()

    second = settlement_run()

    assert (second.status, second.trades_count) == (SettlementStatus.EMPTY, 0)
    assert Trade.objects.get().settlement_batch_id == first.pk
    assert balance(buyer_acc, ex.cea) == (100, 0)


def test_bought_units_are_available_only_after_settlement(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 100)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)

    with pytest.raises(DomainError) as refused:
        ex.order(buyer, buyer_acc, "sell", 8000, 100)
    assert refused.value.code == "insufficient_available"

    settlement_run()
    assert ex.order(buyer, buyer_acc, "sell", 8000, 100).order.remaining == 100


def test_a_fill_below_the_limit_releases_the_surplus_at_settlement(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 7900, 100)
    ex.order(buyer, buyer_acc, "buy", 8100, 100)  # reserves 81.00 x 100 + fee = 814,860 fen

    settlement_run()

    # pays 790,000 + fee 4,740; nothing stays held
    assert balance(buyer_acc, ex.cny) == (10_000_000 - 794_740, 0)
    assert_reconciled()


def test_partly_filled_then_cancelled_buy_settles_exactly(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 7950, 40)
    order = ex.order(buyer, buyer_acc, "buy", 8000, 100).order
    order_cancel(actor=buyer, order=Order.objects.get(pk=order.pk))
    # kept for the unsettled trade: 318,000 + fee 1,908
    assert balance(buyer_acc, ex.cny) == (10_000_000, 319_908)

    settlement_run()

    assert balance(buyer_acc, ex.cny) == (10_000_000 - 319_908, 0)
    assert balance(buyer_acc, ex.cea) == (40, 0)
    assert_reconciled()


def test_many_fills_of_one_order_add_their_fees_to_one_rounding(ex):
    sellers = [ex.trader(f"S{i}", units=10) for i in range(7)]
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    for _, acc, actor in sellers:
        ex.order(actor, acc, "sell", 8001, 1)  # 80.01 x 1: fee 0.48006 each, 3.36042 in all

    placed = ex.order(buyer, buyer_acc, "buy", 8001, 7)

    assert sum(t.buyer_fee_fen for t in placed.trades) == 336  # fee(56,007 fen) = 336.042 -> 336
    settlement_run()
    assert balance(buyer_acc, ex.cny) == (10_000_000 - 56_007 - 336, 0)
    assert_reconciled()


def _make_trades(ex, sellers, buyers, n: int) -> None:
    """n one-tonne trades: each seller rests one sell order, buyers lift them one tonne at a time."""
    per_seller = n // len(sellers)
    for _, acc, actor in sellers:
        ex.order(actor, acc, "sell", 8000, per_seller)
    for i in range(n):
        _, acc, actor = buyers[i % len(buyers)]
        ex.order(actor, acc, "buy", 8000, 1)


def test_query_count_is_the_same_for_10_and_1000_trades(ex):
    from exchange.services.accounts import system_account

    sellers = [ex.trader(f"Seller {i}", units=1015) for i in range(5)]
    buyers = [ex.trader(f"Buyer {i}", cash_fen=100_000_000) for i in range(5)]
    system_account(AccountKind.FEE)  # cached from here on, as in a running worker
    _make_trades(ex, sellers, buyers, 5)
    settlement_run()  # every balance row exists from here on: the first batch creates the buyers' rows
    counts = {}
    for n in (10, 1000):
        _make_trades(ex, sellers, buyers, n)
        assert Trade.objects.filter(settlement_batch__isnull=True).count() == n
        with CaptureQueriesContext(connection) as queries:
            batch = settlement_run()
        assert batch.trades_count == n
        counts[n] = len(queries)

    assert counts[10] == counts[1000]
    assert counts[10] <= 30
    assert balance(buyers[0][1], ex.cea) == ((5 + 10 + 1000) // 5, 0)
    assert_reconciled()
