"""Many concurrent orders from one participant never reserve more than it has (real PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from core import clock
from core.errors import DomainError
from exchange.models import Order, OrderStatus
from tests.helpers.ledger import assert_reconciled, balance
from tests.helpers.market import IN_SESSION, make_exchange, on_market

pytestmark = [pytest.mark.django_db(transaction=True)]


def _race(workers: int, attempt) -> tuple[int, list[str]]:
    barrier = threading.Barrier(workers)
    ok, codes, lock = [0], [], threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            attempt(i)
            with lock:
                ok[0] += 1
        except DomainError as exc:
            with lock:
                codes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return ok[0], codes


def test_concurrent_sells_never_hold_more_units_than_held():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, acc, actor = ex.trader("Seller", units=100)

        succeeded, codes = _race(16, lambda i: ex.order(actor, acc, "sell", 8000 + i, 10, client_order_id=f"s{i}"))

    assert succeeded == 10
    assert codes == ["insufficient_available"] * 6
    assert balance(acc, ex.cea) == (100, 100)
    assert Order.objects.filter(status=OrderStatus.OPEN).count() == 10
    assert_reconciled()


def test_concurrent_buys_never_reserve_more_cash_than_held():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, acc, actor = ex.trader("Buyer", cash_fen=1_000_000)  # 10,000.00 yuan
        # each order reserves 80.00 x 20 + 0.6% = 1,609.60 yuan: six fit, the seventh does not

        succeeded, codes = _race(12, lambda i: ex.order(actor, acc, "buy", 8000, 20, client_order_id=f"b{i}"))

    assert succeeded == 6
    assert codes == ["insufficient_available"] * 6
    assert balance(acc, ex.cny) == (1_000_000, 6 * 160_960)
    assert_reconciled()


def test_orders_on_two_assets_match_in_parallel_and_one_book_stays_consistent():
    from exchange.services.issuance import cea_vintage_create
    from exchange.services.listings import asset_list

    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        other = cea_vintage_create(actor=ex.market.registry_actor, vintage=2025)
        on_market(other, ex.cea.market)  # the same continuous test market
        asset_list(actor=ex.operator, asset=other, reference_price_fen=8000)
        sellers = [ex.trader(f"S{i}", units=50) for i in range(4)]
        for _, acc, _ in sellers:
            ex.market.give(acc, 50, asset=other)
        buyers = [ex.trader(f"B{i}", cash_fen=10_000_000) for i in range(4)]

        def attempt(i: int) -> None:
            asset = ex.cea if i % 2 else other
            if i < 8:
                _, acc, actor = sellers[i % 4]
                ex.order(actor, acc, "sell", 8000, 10, asset=asset, client_order_id=f"s{i}")
            else:
                _, acc, actor = buyers[i % 4]
                ex.order(actor, acc, "buy", 8000, 10, asset=asset, client_order_id=f"b{i}")

        succeeded, codes = _race(16, attempt)

    assert (succeeded, codes) == (16, [])
    from exchange.models import Trade

    for asset in (ex.cea, other):
        sold = sum(t.quantity for t in Trade.objects.filter(asset=asset))
        assert sold == 40
        assert not Order.objects.filter(asset=asset, status=OrderStatus.OPEN).exists()
    assert_reconciled()
