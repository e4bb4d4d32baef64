"""Sealing audit events into checkpoints, verification, and each kind of tampering named precisely."""

from __future__ import annotations

import io
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from exchange.audit_proof import event_body, event_hash, format_time
from exchange.models import AuditEvent, Checkpoint
from exchange.services.audit import audit_record
from exchange.services.sealing import audit_seal, audit_verify
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import make_market


@pytest.fixture
def sealed_market(db):
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 1000)
    for quantity in range(1, 8):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=quantity)
    audit_seal()
    return market


def tampering() -> None:
    """Switch off the append-only triggers for this transaction, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")


def execute(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def event_seqs() -> list[int]:
    return list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))


def test_seal_covers_every_event_once_and_is_idempotent(sealed_market):
    checkpoints = list(Checkpoint.objects.order_by("number"))
    assert sum(c.count for c in checkpoints) == AuditEvent.objects.count()
    assert checkpoints[-1].last_seq == max(event_seqs())
    assert audit_seal() == []
    assert audit_verify().ok


def test_a_later_seal_chains_to_the_previous_checkpoint(sealed_market):
    _, a_acc, a = sealed_market.holder("A")
    _, b_acc, _ = sealed_market.holder("B")
    first = Checkpoint.objects.get()
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=sealed_market.cea, quantity=1)

    (second,) = audit_seal()

    assert (second.number, second.previous_hash, second.first_seq) == (2, first.hash, first.last_seq + 1)
    assert audit_verify().ok


def test_changed_payload_of_a_transfer_is_named(sealed_market):
    target = AuditEvent.objects.filter(action="transfer.create").order_by("seq")[2]
    tampering()
    changed = target.payload.replace('"quantity":"3"', '"quantity":"300"')
    assert changed != target.payload
    execute("UPDATE exchange_auditevent SET payload = %s WHERE seq = %s", [changed, target.seq])

    result = audit_verify()

    assert not result.ok
    assert result.failure == {"kind": "event", "seq": target.seq, "reason": "hash does not match its contents"}


def _verify_audit_command() -> tuple[int, str, str]:
    """``manage.py verify_audit``: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", "--no-progress", stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_the_verify_audit_command_passes_a_clean_trail(sealed_market):
    status, out, err = _verify_audit_command()

    assert status == 0
    assert out.startswith(f"verify_audit: the trail is intact: {AuditEvent.objects.count()} events (0 not yet sealed)")
    assert "MISMATCH" not in out
    assert err == ""


def test_the_verify_audit_command_names_a_tampered_event_and_exits_1(sealed_market):
    target = AuditEvent.objects.filter(action="transfer.create").order_by("seq")[2]
    tampering()
    changed = target.payload.replace('"quantity":"3"', '"quantity":"300"')
    assert changed != target.payload
    execute("UPDATE exchange_auditevent SET payload = %s WHERE seq = %s", [changed, target.seq])

    status, out, err = _verify_audit_command()

    assert status == 1
    # The first mismatch is the event; its checkpoint's root no longer matches either.
    assert out.splitlines() == [
        f"MISMATCH event {target.seq}: hash does not match its contents",
        "MISMATCH checkpoint 1: Merkle root does not match its events",
    ]
    assert "verify_audit: the trail does not verify" in err


def test_deleted_event_is_named(sealed_market):
    target = event_seqs()[4]
    tampering()
    execute("DELETE FROM exchange_auditevent WHERE seq = %s", [target])

    result = audit_verify()

    assert result.failure["kind"] == "event"
    assert result.failure["seq"] == target
    assert result.failure["reason"].startswith("missing")


def test_inserted_event_is_named(sealed_market):
    # A rolled-back event leaves a gap in the sequence, which the checkpoint records.
    _, a_acc, a = sealed_market.holder("A")
    with transaction.atomic():
        audit_record(actor=a, action="test.rolled_back", obj=("test", "1"), payload={})
        transaction.set_rollback(True)
    _, b_acc, _ = sealed_market.holder("B")
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=sealed_market.cea, quantity=1)
    (checkpoint,) = audit_seal()
    (gap,) = [int(g) for g in json.loads(checkpoint.gaps)]
    assert audit_verify().ok

    # An attacker inserts an event into that gap, with a hash that matches its contents.
    moment = AuditEvent.objects.get(seq=gap + 1).created_at
    body = event_body(time=format_time(moment), action="transfer.create", actor_label="system:forged", actor_user=None,
                      actor_participant=None, object_type="transaction", object_id="999", payload="{}")
    tampering()
    execute(
        "INSERT INTO exchange_auditevent (seq, created_at, actor_label, action, object_type, object_id, payload, hash) "
        "VALUES (%s, %s, 'system:forged', 'transfer.create', 'transaction', '999', '{}', %s)",
        [gap, moment, event_hash(gap, body)],
    )

    result = audit_verify()

    assert result.failure == {
        "kind": "event",
        "seq": gap,
        "reason": f"present, but checkpoint {checkpoint.number} sealed its number as a gap",
    }


def test_swapped_events_are_named(sealed_market):
    first, second = event_seqs()[3], event_seqs()[6]
    columns = (
        "created_at, actor_user_id, actor_participant_id, actor_label, action, object_type, object_id, payload, hash"
    )
    rows = {}
    with connection.cursor() as cursor:
        for seq in (first, second):
            cursor.execute(f"SELECT {columns} FROM exchange_auditevent WHERE seq = %s", [seq])
            rows[seq] = cursor.fetchone()
    tampering()
    assignments = ", ".join(f"{c.strip()} = %s" for c in columns.split(","))
    execute(f"UPDATE exchange_auditevent SET {assignments} WHERE seq = %s", [*rows[second], first])
    execute(f"UPDATE exchange_auditevent SET {assignments} WHERE seq = %s", [*rows[first], second])

    result = audit_verify(stop_at_first=False)

    assert result.failure["seq"] == first
    assert {p.get("seq") for p in result.problems if p["kind"] == "event"} == {first, second}


def test_changed_checkpoint_root_is_named(sealed_market):
    checkpoint = Checkpoint.objects.get()
    tampering()
    execute("UPDATE exchange_checkpoint SET root = %s WHERE number = %s", ["ab" * 32, checkpoint.number])

    result = audit_verify()

    assert result.failure == {"kind": "checkpoint", "checkpoint": 1, "reason": "hash does not match its fields"}


def test_rewritten_checkpoint_is_named_by_its_events(sealed_market):
    """A tamperer who changes an event and rewrites the checkpoint's root and hash to match is still caught."""
    from exchange.audit_proof import checkpoint_hash, merkle_root
    from exchange.services.sealing import _checkpoint_fields

    checkpoint = Checkpoint.objects.get()
    hashes = list(AuditEvent.objects.order_by("seq").values_list("hash", flat=True))
    hashes[2] = "00" * 32
    fields = _checkpoint_fields(checkpoint) | {"root": merkle_root(hashes)}
    tampering()
    execute(
        "UPDATE exchange_checkpoint SET root = %s, hash = %s WHERE number = %s",
        [fields["root"], checkpoint_hash(fields), checkpoint.number],
    )

    result = audit_verify()

    # The rewritten hash is no longer the one the registry's key signed: that is the first thing named.
    assert result.failure == {
        "kind": "checkpoint",
        "checkpoint": 1,
        "reason": f"signature does not verify with key {checkpoint.key_id}",
    }
    assert {"kind": "checkpoint", "checkpoint": 1, "reason": "Merkle root does not match its events"} in result.problems


def test_triggers_refuse_changes_to_events_and_checkpoints(sealed_market):
    from django.db import DatabaseError

    for sql in (
        "UPDATE exchange_auditevent SET action = 'x' WHERE seq = (SELECT MIN(seq) FROM exchange_auditevent)",
        "DELETE FROM exchange_auditevent WHERE seq = (SELECT MIN(seq) FROM exchange_auditevent)",
        "UPDATE exchange_checkpoint SET root = 'x'",
        "DELETE FROM exchange_checkpoint",
    ):
        with pytest.raises(DatabaseError, match="never changed or deleted"), transaction.atomic():
            execute(sql)


# --- concurrency on PostgreSQL ----------------------------------------------------------------------------
def _in_thread(target, *args):
    errors: list[BaseException] = []

    def run():
        try:
            target(*args)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.django_db(transaction=True)
def test_an_event_committing_late_is_sealed_by_the_next_run():
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, b = market.holder("B")
    _, c_acc, _ = market.holder("C")
    _, d_acc, _ = market.holder("D")
    market.give(a_acc, 10)
    market.give(b_acc, 10)
    audit_seal()
    holding, release = threading.Event(), threading.Event()

    def slow_transfer():
        with transaction.atomic():
            transfer_create(actor=a, source=a_acc, destination=c_acc, asset=market.cea, quantity=1)
            holding.set()
            release.wait(20)

    thread, errors = _in_thread(slow_transfer)
    assert holding.wait(10)
    late_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()  # not visible yet
    transfer_create(actor=b, source=b_acc, destination=d_acc, asset=market.cea, quantity=1)
    committed_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert late_seq is None or late_seq < committed_seq

    sealed_while_open = audit_seal()

    assert sealed_while_open == []  # the horizon can't pass an open writer
    release.set()
    thread.join(20)
    assert errors == []
    sealed_after = audit_seal()
    assert len(sealed_after) == 1
    late_event = AuditEvent.objects.filter(action="transfer.create", actor_participant_id=a.participant_id).get()
    assert sealed_after[0].first_seq <= late_event.seq < committed_seq <= sealed_after[0].last_seq
    assert json.loads(sealed_after[0].gaps) == []
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_two_sealers_at_once_make_one_chain():
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    for _ in range(20):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=1)
    barrier = threading.Barrier(2)
    results: list[list[Checkpoint]] = []

    def seal():
        barrier.wait(10)
        results.append(audit_seal())

    threads = [_in_thread(seal) for _ in range(2)]
    for thread, errors in threads:
        thread.join(30)
        assert errors == []

    numbers = list(Checkpoint.objects.order_by("number").values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    assert sum(Checkpoint.objects.values_list("count", flat=True)) == AuditEvent.objects.count()
    assert sorted(len(r) for r in results)[0] == 0  # the second sealer found nothing left
    assert audit_verify().ok


def test_the_verify_audit_command_counts_one_checkpoint_in_the_singular(sealed_market, tmp_path):
    from rest_framework.test import APIClient

    feed = APIClient().get("/api/v1/audit/checkpoints/feed").json()["checkpoints"]
    kept = tmp_path / "kept-feed.json"
    kept.write_text(json.dumps({"checkpoints": feed}))
    out = io.StringIO()

    call_command("verify_audit", "--no-progress", "--against", str(kept), stdout=out, stderr=io.StringIO())

    assert Checkpoint.objects.count() == len(feed) == 1
    assert f"{AuditEvent.objects.count()} events (0 not yet sealed) in 1 checkpoint, " in out.getvalue()
    assert ", 1 kept checkpoint compared" in out.getvalue()
