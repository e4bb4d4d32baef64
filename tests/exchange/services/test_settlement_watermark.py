"""Settlement's watermark (``SettlementBatch.settled_before``): every trade of an earlier trading day is settled,
so a run reads only the days from the watermark on; a trade of an earlier day is refused by the database;
and the watermark waits while a transaction begun before the day could still commit a trade of it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from core import clock
from exchange.models import SettlementBatch, Trade
from exchange.services.settlement import settlement_run
from tests.helpers.ledger import assert_reconciled
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ex():
    ex = make_exchange()
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.accounts = (seller, seller_acc, buyer, buyer_acc)
    return ex


def _trade(ex, quantity: int) -> None:
    seller, seller_acc, buyer, buyer_acc = ex.accounts
    ex.order(seller, seller_acc, "sell", 8000, quantity)
    ex.order(buyer, buyer_acc, "buy", 8000, quantity)


def _copy_of_trade_on(trade: Trade, day) -> None:
    columns = [f.column for f in Trade._meta.concrete_fields if f.column not in {"id", "trading_day"}]
    listed = ", ".join(columns)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO exchange_trade ({listed}, trading_day) SELECT {listed}, %s FROM exchange_trade WHERE id = %s",
            [day, trade.pk],
        )


def test_a_batch_records_the_day_before_which_every_trade_is_settled(ex):
    _trade(ex, 10)

    batch = settlement_run()

    assert batch.trades_count == 1
    assert batch.settled_before == clock.trading_day(IN_SESSION)
    assert Trade.objects.filter(settlement_batch__isnull=True).count() == 0


def test_the_next_run_settles_the_trades_from_the_watermark_on(ex):
    _trade(ex, 10)
    first = settlement_run()
    _trade(ex, 20)
    _trade(ex, 30)

    second = settlement_run()

    assert second.trades_count == 2
    assert second.settled_before == first.settled_before
    assert sorted(Trade.objects.filter(settlement_batch=second.pk).values_list("quantity", flat=True)) == [20, 30]
    assert settlement_run().trades_count == 0
    assert_reconciled()


def test_a_trade_of_a_day_before_the_watermark_is_refused(ex):
    _trade(ex, 10)
    batch = settlement_run()
    trade = Trade.objects.get()
    before = Trade.objects.count()

    with pytest.raises(IntegrityError, match="settlement has closed"):
        _copy_of_trade_on(trade, batch.settled_before - timedelta(days=1))

    assert Trade.objects.count() == before
    _copy_of_trade_on(trade, batch.settled_before)  # the watermark's own day is still open
    assert Trade.objects.count() == before + 1


def _wait_for_backend_to_exit(pid: int, seconds: float = 30.0) -> None:
    """Closing a connection only asks its server process to end: until it has, its transaction is still
    listed as open, and settlement rightly waits for it. Wait for the process to be gone."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid])
            (alive,) = cursor.fetchone()
            if not alive:
                return
            assert time.monotonic() < deadline, f"the server process {pid} of a closed connection did not end"
            time.sleep(0.01)


def test_the_watermark_waits_for_a_transaction_begun_before_the_day():
    """A transaction open since before the day starts could still commit a trade of the day before: the
    batch keeps the previous watermark, and advances at the next run once that transaction has ended."""
    tomorrow = datetime.now(clock.MARKET_TZ).replace(hour=16, minute=0) + timedelta(days=1)
    settings = connection.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"],
        port=settings["PORT"] or None,
    )
    other_pid = other.info.backend_pid
    try:
        other.execute("SELECT 1")  # a transaction begun now, open (idle in transaction)
        with clock.pinned(tomorrow):
            held = settlement_run()
        assert held.settled_before is None
    finally:
        other.close()
    _wait_for_backend_to_exit(other_pid)

    with clock.pinned(tomorrow):
        advanced = settlement_run()
    assert advanced.settled_before == tomorrow.date()
    assert list(SettlementBatch.objects.order_by("id").values_list("settled_before", flat=True)) == [
        None,
        tomorrow.date(),
    ]
