"""A real Celery worker on Redis settles; killed with SIGKILL inside the batch, the batch run again
settles every trade exactly once, and the ledger reconciles."""

from __future__ import annotations

import pytest
from django.db import connection

from core import clock
from exchange.models import SettlementBatch, SettlementStatus, Trade
from exchange.services.sealing import audit_verify
from exchange.tasks import settlement_run_task
from tests.helpers.ledger import assert_reconciled, balance
from tests.helpers.market import IN_SESSION, make_exchange
from tests.helpers.workers import send, wait_for, worker

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_batch_and_run_again_settles_each_trade_once(tmp_path):
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        sellers = [ex.trader(f"Seller {i}", units=100) for i in range(3)]
        buyers = [ex.trader(f"Buyer {i}", cash_fen=10_000_000) for i in range(3)]
        for i in range(30):
            _, s_acc, s = sellers[i % 3]
            _, b_acc, b = buyers[(i + 1) % 3]
            ex.order(s, s_acc, "sell", 8000, 2)
            ex.order(b, b_acc, "buy", 8000, 2)
    assert Trade.objects.filter(settlement_batch__isnull=True).count() == 30
    marker = tmp_path / "paused"
    connection.close()

    with worker(tmp_path, GREENLEDGER_PAUSE_AT="settlement.posted", GREENLEDGER_PAUSE_FILE=str(marker)) as doomed:
        send(settlement_run_task, doomed.queue)
        wait_for(marker.exists, 60, "the worker to reach the crash point", doomed.log)
        doomed.kill()

    # Killed inside its transaction: nothing of the batch remains.
    assert SettlementBatch.objects.count() == 0
    assert Trade.objects.filter(settlement_batch__isnull=True).count() == 30
    assert balance(buyers[0][1], ex.cea) == (0, 0)

    with worker(tmp_path) as healthy:
        send(settlement_run_task, healthy.queue)
        wait_for(
            lambda: SettlementBatch.objects.filter(status=SettlementStatus.COMPLETED).exists(),
            60,
            "settlement",
            healthy.log,
        )
        send(settlement_run_task, healthy.queue)  # and once more: nothing is settled twice
        wait_for(
            lambda: SettlementBatch.objects.filter(status=SettlementStatus.EMPTY).exists(),
            60,
            "second run",
            healthy.log,
        )

    (batch,) = SettlementBatch.objects.filter(status=SettlementStatus.COMPLETED)
    assert batch.trades_count == 30
    assert set(Trade.objects.values_list("settlement_batch_id", flat=True)) == {batch.pk}
    assert sum(balance(acc, ex.cea)[0] for _, acc, _ in buyers) == 60
    assert sum(balance(acc, ex.cea)[0] for _, acc, _ in sellers) == 300 - 60
    assert_reconciled()
    assert audit_verify().ok
