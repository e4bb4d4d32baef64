"""Audit verification across checkpoints in worker processes, and incremental from the last intact run."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from exchange.models import AuditEvent, AuditVerification, Checkpoint
from exchange.services import sealing
from exchange.services.sealing import audit_seal, audit_verify
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import make_market


def _trail(transfers: int, monkeypatch, market=None) -> list[Checkpoint]:
    """A trail sealed into checkpoints of at most four events each (``market`` is made when not given)."""
    monkeypatch.setattr(sealing, "MAX_EVENTS_PER_CHECKPOINT", 4)
    market = market or make_market()
    _, a_acc, a = market.holder(f"A{transfers}")
    _, b_acc, _ = market.holder(f"B{transfers}")
    market.give(a_acc, 1000)
    for quantity in range(1, transfers + 1):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=quantity)
    return audit_seal(max_checkpoints=1000)


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("COMMIT")


@pytest.mark.usefixtures("flushed_db")
def test_workers_verify_every_checkpoint_and_name_the_first_bad_event_as_one_pass_does(monkeypatch):
    made = _trail(12, monkeypatch)
    assert len(made) >= 4
    total = AuditEvent.objects.count()

    one, two = audit_verify(workers=1), audit_verify(workers=2)

    assert one.ok
    assert two.ok
    expected = (total, len(made), 0)
    assert (one.events, one.checkpoints, one.unsealed) == expected
    assert (two.events, two.checkpoints, two.unsealed) == expected

    # Given an event of the third checkpoint edited: both name it, and only it.
    bad = made[2].first_seq + 1
    _tamper("UPDATE exchange_auditevent SET action = 'transfer.forged' WHERE seq = %s", [bad])

    one, two = audit_verify(workers=1), audit_verify(workers=2)

    assert one.failure == two.failure == {"kind": "event", "seq": bad, "reason": "hash does not match its contents"}
    assert one.problems == two.problems
    assert one.events == two.events
    everything = audit_verify(workers=2, stop_at_first=False)
    assert everything.problems == audit_verify(workers=1, stop_at_first=False).problems
    assert {"kind": "checkpoint", "checkpoint": made[2].number, "reason": "Merkle root does not match its events"} in (
        everything.problems
    )


@pytest.mark.usefixtures("flushed_db")
def test_an_incremental_run_resumes_after_the_last_intact_run(monkeypatch):
    market = make_market()
    made = _trail(6, monkeypatch, market)
    full = audit_verify(workers=2, record=True)
    assert full.ok
    assert full.resumed_after is None
    recorded = AuditVerification.objects.get()
    assert (recorded.through_number, recorded.through_hash, recorded.full) == (made[-1].number, made[-1].hash, True)

    # An event before the recorded checkpoint, edited: only a full run reads it again.
    _tamper("UPDATE exchange_auditevent SET action = 'transfer.forged' WHERE seq = %s", [made[0].first_seq])
    later = _trail(1, monkeypatch, market)
    new_events = AuditEvent.objects.filter(seq__gt=made[-1].last_seq).count()

    resumed = audit_verify(since_last=True, workers=2, record=True)

    assert resumed.ok
    assert resumed.resumed_after == made[-1].number
    assert (resumed.checkpoints, resumed.events) == (len(later), new_events)
    latest = AuditVerification.objects.order_by("-id").first()
    assert (latest.through_number, latest.full) == (later[-1].number, False)
    assert not audit_verify(workers=2).ok  # the full run still finds the old edit


@pytest.mark.usefixtures("flushed_db")
def test_an_incremental_run_refuses_to_resume_after_a_checkpoint_changed_since(monkeypatch):
    made = _trail(6, monkeypatch)
    assert audit_verify(record=True).ok
    _tamper("UPDATE exchange_checkpoint SET hash = %s WHERE number = %s", ["0" * 64, made[-1].number])

    resumed = audit_verify(since_last=True)

    assert not resumed.ok
    assert resumed.failure["checkpoint"] == made[-1].number
    assert resumed.failure["reason"].startswith("changed or gone since a run verified it")


@pytest.mark.usefixtures("flushed_db")
def test_the_command_resumes_with_since_last_and_records_intact_runs(monkeypatch):
    made = _trail(6, monkeypatch)
    out = io.StringIO()
    call_command("verify_audit", "--no-progress", "--workers", "2", stdout=out)
    assert "the trail is intact" in out.getvalue()
    assert AuditVerification.objects.get().through_number == made[-1].number

    out = io.StringIO()
    call_command("verify_audit", "--no-progress", "--since-last", stdout=out)

    assert f"resumed after checkpoint {made[-1].number}" in out.getvalue()
    assert "0 events" in out.getvalue()
    assert AuditVerification.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql", ["DELETE FROM exchange_auditverification", "UPDATE exchange_auditverification SET events = 0"]
)
def test_verification_records_are_append_only(sql):
    AuditVerification.objects.create(
        through_number=1, through_hash="0" * 64, events=1, full=True, verified_at=timezone.now()
    )
    with pytest.raises(DatabaseError, match="never changed or deleted"), connection.cursor() as cursor:
        cursor.execute(sql)
