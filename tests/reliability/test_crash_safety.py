"""Crash safety of the scheduled jobs with real Celery workers on Redis.

For each job (settlement is in tests/exchange/jobs/test_settlement_worker.py): a worker is SIGKILLed inside
the job's transaction, after its work and before its commit; nothing of the job remains. The job is then
run again, twice, by a healthy worker: its effects happen exactly once, and the ledger reconciles and the
audit trail verifies.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.conf import settings
from django.db import connection

from core import clock
from exchange.models import AuditEvent, Checkpoint, ComplianceYear, Obligation, PledgeValuation
from exchange.services.sealing import audit_verify
from exchange.tasks import (
    audit_seal_task,
    compliance_deadlines_task,
    pending_transfers_execute_task,
    pledges_value_task,
)
from tests.helpers.ledger import assert_reconciled
from tests.helpers.market import IN_SESSION
from tests.helpers.workers import send, wait_for, worker

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def kill_inside(tmp_path, point: str, task, *args) -> None:
    """Run ``task`` on a worker that pauses at ``point`` (inside the transaction) and SIGKILL it there."""
    marker = tmp_path / f"paused-{point}"
    connection.close()
    with worker(tmp_path, GREENLEDGER_PAUSE_AT=point, GREENLEDGER_PAUSE_FILE=str(marker)) as doomed:
        send(task, doomed.queue, *args)
        wait_for(marker.exists, 60, f"the worker to reach {point}", doomed.log)
        doomed.kill()


def rerun_twice(tmp_path, task, *args) -> None:
    """Run ``task`` twice on a healthy worker, then seal, and wait until everything is sealed."""
    with worker(tmp_path) as healthy:
        send(task, healthy.queue, *args)
        send(task, healthy.queue, *args)
        send(audit_seal_task, healthy.queue)
        wait_for(_sealed_through_latest, 60, f"two runs of {task.name} and a seal", healthy.log)


def _sealed_through_latest() -> bool:
    latest = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    last = Checkpoint.objects.order_by("-number").values_list("last_seq", flat=True).first()
    return latest is not None and last == latest


def test_sealing_killed_inside_its_transaction(tmp_path):
    from tests.helpers.ledger import make_market

    market = make_market()
    _, account, _ = market.holder("Entity")
    market.give(account, 10)
    events = AuditEvent.objects.count()

    kill_inside(tmp_path, "audit.sealed", audit_seal_task)
    assert not Checkpoint.objects.exists()

    rerun_twice(tmp_path, audit_seal_task)

    assert Checkpoint.objects.filter(first_seq=1).count() == 1
    # Sealing records no events of its own: the killed run and the reruns leave exactly those there were.
    assert sum(Checkpoint.objects.values_list("count", flat=True)) == AuditEvent.objects.count() == events
    assert audit_verify().ok
    assert_reconciled()


def test_pledge_valuation_killed_inside_its_transaction(tmp_path):
    from tests.helpers.pledges import DAY, make_pledges

    with clock.pinned(IN_SESSION):
        ps = make_pledges()
        loan = ps.registered(500)
        ps.close_at(DAY, 7200)

    kill_inside(tmp_path, "pledges.valued", pledges_value_task, DAY.isoformat())
    assert PledgeValuation.objects.count() == 0

    rerun_twice(tmp_path, pledges_value_task, DAY.isoformat())

    assert list(PledgeValuation.objects.values_list("loan_id", "day", "ltv_bp")) == [(loan.pk, DAY, 6667)]
    assert AuditEvent.objects.filter(action="pledge.valuation_run").count() == 1
    assert_reconciled()
    assert audit_verify().ok


def test_compliance_deadlines_killed_inside_their_transaction(tmp_path):
    from tests.helpers.compliance import make_cycle

    cycle = make_cycle(2024)  # deadline 2025-12-31: passed by the time this runs
    short = cycle.entity("Short entity", emissions=1000)
    cycle.market.give(short.account, 400)
    cycle.surrender(short, (cycle.market.cea, 400))
    assert cycle.year.deadline < date.today()

    kill_inside(tmp_path, "compliance.assessed", compliance_deadlines_task)
    assert ComplianceYear.objects.get(pk=2024).closed_at is None

    rerun_twice(tmp_path, compliance_deadlines_task)

    year = ComplianceYear.objects.get(pk=2024)
    assert year.closed_at is not None
    obligation = Obligation.objects.get(pk=short.obligation.pk)
    assert (obligation.status, obligation.shortfall) == ("short", 600)
    assert AuditEvent.objects.filter(action="compliance.year_close").count() == 1
    assert_reconciled()
    assert audit_verify().ok


def test_pending_transfers_killed_inside_their_transaction(tmp_path):
    from django.test import override_settings

    from exchange.models import PendingStatus, PendingTransfer
    from exchange.services.transfers import transfer_create
    from tests.helpers.ledger import balance, make_market

    market = make_market()
    _, source, actor = market.holder("Sender")
    _, destination, _ = market.holder("Receiver")
    market.give(source, 30)
    config = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True, "PENDING_TRANSFER_DELAY_SECONDS": 0}
    with override_settings(GREENLEDGER=config):
        for _ in range(3):
            transfer_create(actor=actor, source=source, destination=destination, asset=market.cea, quantity=10)
    assert PendingTransfer.objects.filter(status=PendingStatus.PENDING).count() == 3

    kill_inside(tmp_path, "pending.executed", pending_transfers_execute_task)
    assert PendingTransfer.objects.filter(status=PendingStatus.PENDING).count() == 3
    assert balance(destination, market.cea) == (0, 0)

    rerun_twice(tmp_path, pending_transfers_execute_task)

    assert PendingTransfer.objects.filter(status=PendingStatus.EXECUTED).count() == 3
    assert balance(source, market.cea) == (0, 0)
    assert balance(destination, market.cea) == (30, 0)
    assert AuditEvent.objects.filter(action="transfer.pending_execute").count() == 3
    assert_reconciled()
    assert audit_verify().ok
