"""Tampering by someone with write access to the database, caught by ``reconcile`` or ``verify_audit``.

Each test edits the database as an attacker would (switching the append-only triggers off with
``ALTER TABLE ... DISABLE TRIGGER`` where it must), then runs the command: it exits 1 and names the exact
transaction, posting, event or checkpoint.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from exchange.audit_proof import (
    checkpoint_hash,
    event_body,
    event_hash,
    format_time,
    key_id,
    merkle_root,
    signature_problem,
    signed_message,
)
from exchange.models import AuditEvent, Balance, Checkpoint, Posting, Transaction
from exchange.selectors.audit import checkpoint_document
from exchange.services import sealing
from exchange.services.cash import cash_asset
from exchange.services.sealing import _checkpoint_fields, audit_seal, audit_verify
from exchange.services.transfers import transfer_create
from tests.helpers.market import make_exchange

pytestmark = pytest.mark.django_db

YUAN_123456 = 12_345_600  # 123,456.00 yuan in fen


@pytest.fixture
def trail(settings):
    # The production tolerance for the journal's order (the test settings allow any gap).
    settings.GREENLEDGER = {**settings.GREENLEDGER, "JOURNAL_CLOCK_TOLERANCE_SECONDS": 300}
    ex = make_exchange()
    _, a_acc, a = ex.trader("Jingneng", units=100, cash_fen=20_000_000)
    _, b_acc, _ = ex.trader("Huaneng", cash_fen=1_000_000)
    for quantity in (5, 7, 9):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=ex.cea, quantity=quantity)
    audit_seal()
    assert _run("reconcile")[0] == 0
    assert _run("verify_audit")[0] == 0
    return ex, a_acc, b_acc


def _run(command: str, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            command, *args, "--no-progress" if command == "verify_audit" else "--quiet", stdout=out, stderr=err
        )
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def _sql(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall() if cursor.description else []


def _triggers_off(*tables: str) -> None:
    """What an attacker with the database owner's rights does first (the test's rollback undoes it)."""
    _sql("SET CONSTRAINTS ALL IMMEDIATE")
    for table in tables:
        _sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")


def _transfers() -> list[Transaction]:
    return list(Transaction.objects.filter(kind="transfer").order_by("id"))


# --- (a) a balanced entry with postings and balance changes, but no audit event ---------------------------
def test_a_forged_cash_transfer_without_its_audit_event_is_named(trail):
    _, a_acc, b_acc = trail
    cny = cash_asset()
    a_total = Balance.objects.get(account=a_acc, asset=cny).total
    b_total = Balance.objects.get(account=b_acc, asset=cny).total
    # Plain INSERTs: the journal accepts them (they balance); only the balances are updated.
    ((txn_id,),) = _sql(
        "INSERT INTO exchange_transaction (kind, actor_label, idempotency_scope, request_hash, memo, metadata, "
        "created_at) VALUES ('transfer', 'Jingneng', 'x', %s, '', '{}', now()) RETURNING id",
        ["0" * 64],
    )
    _sql(
        "INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after) "
        "VALUES (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s)",
        [
            *(txn_id, a_acc.pk, cny.pk, -YUAN_123456, a_total - YUAN_123456),
            *(txn_id, b_acc.pk, cny.pk, YUAN_123456, b_total + YUAN_123456),
        ],
    )
    _sql(
        "UPDATE exchange_balance SET total = total - %s WHERE account_id = %s AND asset_id = %s",
        [YUAN_123456, a_acc.pk, cny.pk],
    )
    _sql(
        "UPDATE exchange_balance SET total = total + %s WHERE account_id = %s AND asset_id = %s",
        [YUAN_123456, b_acc.pk, cny.pk],
    )

    code, out = _run("reconcile")

    assert code == 1
    assert f"[5 every entry has its audit event] transaction {txn_id} (transfer, " in out
    assert (
        f"has no audit event; its postings: {a_acc.number} -{YUAN_123456} CNY fen, {b_acc.number} {YUAN_123456} CNY fen"
        in out
    )
    assert "reconcile: 1 violation in 1 of" in out  # the ledger itself balances: only the link is missing
    assert _run("verify_audit")[0] == 0  # the audit trail alone can't see what was never written to it


def test_an_entry_whose_postings_were_rewritten_is_named_by_its_event(trail):
    """Both sides of a transfer changed alike: it still balances, and the balances were fixed to match."""
    ex, a_acc, b_acc = trail
    txn = _transfers()[-1]
    event = AuditEvent.objects.get(object_type="transaction", object_id=str(txn.pk))
    _triggers_off("exchange_posting")
    for sign in (-1, 1):
        _sql(
            "UPDATE exchange_posting SET quantity = quantity * 2, balance_after = balance_after + %s "
            "WHERE transaction_id = %s AND sign(quantity) = %s",
            [9 * sign, txn.pk, sign],
        )
    _sql("UPDATE exchange_balance SET total = total - 9 WHERE account_id = %s AND asset_id = %s", [a_acc.pk, ex.cea.pk])
    _sql("UPDATE exchange_balance SET total = total + 9 WHERE account_id = %s AND asset_id = %s", [b_acc.pk, ex.cea.pk])

    code, out = _run("reconcile")

    assert code == 1
    assert (
        f"[5 the event states its entry] transaction {txn.pk} (transfer): its kind, time or postings are not what "
        f"audit event {event.seq} states" in out
    )


# --- (b) an edited running balance ------------------------------------------------------------------------
def test_an_edited_running_balance_is_named_by_its_posting(trail):
    _, a_acc, _ = trail
    posting = Posting.objects.filter(transaction=_transfers()[1], account=a_acc).get()
    _triggers_off("exchange_posting")
    _sql("UPDATE exchange_posting SET balance_after = balance_after + 50 WHERE id = %s", [posting.pk])

    code, out = _run("reconcile")

    assert code == 1
    assert (
        f"[6 running balances] posting {posting.pk} (transaction {posting.transaction_id}, account {a_acc.number}, "
        f"CEA-2024): balance after {posting.balance_after + 50}, but the postings up to it sum to "
        f"{posting.balance_after}" in out
    )
    assert "reconcile: 1 violation in 1 of" in out


# --- (c) reordered journal times --------------------------------------------------------------------------
def test_a_backdated_entry_is_named_by_the_order_and_by_its_event(trail):
    second = _transfers()[1]
    _triggers_off("exchange_transaction")
    _sql("UPDATE exchange_transaction SET created_at = created_at - interval '1 day' WHERE id = %s", [second.pk])

    code, out = _run("reconcile")

    assert code == 1
    assert f"[7 journal times follow its order] transaction {second.pk} is dated " in out
    assert f", before transaction {second.pk - 1} (" in out
    assert f"[5 the event states its entry] transaction {second.pk} (transfer): its kind, time or postings" in out


def test_swapped_entry_times_are_named_within_the_order_tolerance(trail):
    """Two entries a moment apart swap their times: too close for the order check, not for the digest."""
    _, second, third = _transfers()
    _triggers_off("exchange_transaction")
    _sql(
        "UPDATE exchange_transaction t SET created_at = o.created_at FROM exchange_transaction o "
        "WHERE (t.id, o.id) IN ((%s, %s), (%s, %s))",
        [second.pk, third.pk, third.pk, second.pk],
    )

    code, out = _run("reconcile")

    assert code == 1
    for txn in (second, third):
        assert f"[5 the event states its entry] transaction {txn.pk} (transfer): its kind, time or postings" in out


# --- audit events: edited and rehashed inside a sealed checkpoint -------------------------------------------
def _rehash(seq: int, payload: str) -> None:
    event = AuditEvent.objects.get(seq=seq)
    body = event_body(
        time=format_time(event.created_at),
        action=event.action,
        actor_label=event.actor_label,
        actor_user=event.actor_user_id,
        actor_participant=event.actor_participant_id,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=payload,
    )
    _sql("UPDATE exchange_auditevent SET payload = %s, hash = %s WHERE seq = %s", [payload, event_hash(seq, body), seq])


def test_a_sealed_event_edited_and_rehashed_is_named(trail):
    target = AuditEvent.objects.filter(action="transfer.create").order_by("seq")[1]
    _triggers_off("exchange_auditevent")
    _rehash(target.seq, target.payload.replace('"quantity":"7"', '"quantity":"700"'))

    code, out = _run("verify_audit")

    assert code == 1
    first_line = out.splitlines()[0]
    checkpoint = Checkpoint.objects.get(first_seq__lte=target.seq, last_seq__gte=target.seq)
    assert first_line.endswith(
        f"MISMATCH event {target.seq}: edited after sealing: its contents and hash are not what checkpoint "
        f"{checkpoint.number} sealed"
    )


# --- (d) a correctly hashed event appended after the latest, and sealed ---------------------------------------
def _attacker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _sign_with(key: Ed25519PrivateKey):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return lambda digest: (key_id(raw), base64.b64encode(key.sign(signed_message(digest))).decode())


def test_an_appended_event_sealed_without_the_registrys_key_is_named(trail, monkeypatch):
    _, a_acc, _ = trail
    latest = AuditEvent.objects.order_by("-seq").first()
    seq = latest.seq + 1
    payload = json.dumps(
        {"account": a_acc.number, "amount": "123456.00", "reference": "forged"}, sort_keys=True, separators=(",", ":")
    )
    body = event_body(
        time=format_time(latest.created_at + timedelta(seconds=1)),
        action="cash.deposit",
        actor_label="Beijing Green Exchange",
        actor_user=None,
        actor_participant=None,
        object_type="participant",
        object_id=str(a_acc.participant_id),
        payload=payload,
    )
    _sql(
        "INSERT INTO exchange_auditevent (seq, created_at, actor_label, action, object_type, object_id, payload, hash) "
        "VALUES (%s, %s, 'Beijing Green Exchange', 'cash.deposit', 'participant', %s, %s, %s)",
        [seq, latest.created_at + timedelta(seconds=1), str(a_acc.participant_id), payload, event_hash(seq, body)],
    )
    # The attacker runs the sealing code, but only has a key of their own.
    monkeypatch.setattr(sealing, "sign", _sign_with(_attacker_key()))
    (forged,) = audit_seal()

    code, out = _run("verify_audit")

    assert code == 1
    assert (
        f"MISMATCH checkpoint {forged.number}: is signed by key {forged.key_id}, which is not a trusted audit key"
        in out
    )
    assert f"MISMATCH event {seq}: events {seq}..{seq} are sealed only by checkpoint {forged.number}" in out


def test_an_appended_unsigned_checkpoint_is_named(trail, monkeypatch):
    ex, a_acc, b_acc = trail
    transfer_create(
        actor=trail[0].market.holder("Jingneng")[2], source=a_acc, destination=b_acc, asset=ex.cea, quantity=1
    )
    monkeypatch.setattr(sealing, "sign", lambda digest: ("", ""))
    (unsigned,) = audit_seal()

    code, out = _run("verify_audit")

    assert code == 1
    assert f"MISMATCH checkpoint {unsigned.number}: is not signed" in out
    assert (
        f"MISMATCH event {unsigned.first_seq}: events {unsigned.first_seq}..{unsigned.last_seq} are sealed only" in out
    )


# --- (e) a consistently rewritten latest checkpoint -------------------------------------------------------
def _feed() -> list[dict]:
    response = APIClient().get("/api/v1/audit/checkpoints/feed")
    assert response.status_code == 200
    return response.json()["checkpoints"]


def test_verify_audit_names_a_mismatch_in_the_registry_language(trail, monkeypatch):
    from django.utils import translation

    ex, a_acc, b_acc = trail
    transfer_create(
        actor=trail[0].market.holder("Jingneng")[2], source=a_acc, destination=b_acc, asset=ex.cea, quantity=1
    )
    monkeypatch.setattr(sealing, "sign", lambda digest: ("", ""))
    (unsigned,) = audit_seal()

    with translation.override("zh-hans"):  # manage.py speaks the registry's language (LANGUAGE_CODE)
        code, out = _run("verify_audit")

    assert code == 1
    assert f"不一致 检查点 {unsigned.number}：未签名" in out
    assert (
        f"不一致 事件 {unsigned.first_seq}：事件 {unsigned.first_seq}..{unsigned.last_seq} 仅由检查点 "
        f"{unsigned.number} 封存，而其签名不成立" in out
    )
    assert "verify_audit：审计链验证未通过（" in out
    assert audit_verify().failure["reason"] == "is not signed"  # the result keeps the English, with its code
    assert audit_verify().failure["reason"].code == "not_signed"



def test_a_consistently_rewritten_latest_checkpoint_is_named(trail, tmp_path):
    kept = tmp_path / "kept-feed.json"
    kept.write_text(json.dumps({"checkpoints": _feed()}))
    checkpoint = Checkpoint.objects.order_by("-number").first()
    target = AuditEvent.objects.filter(action="transfer.create", seq__gte=checkpoint.first_seq).order_by("-seq").first()
    _triggers_off("exchange_auditevent", "exchange_checkpoint")
    _rehash(target.seq, target.payload.replace('"quantity":"9"', '"quantity":"90"'))
    hashes = list(
        AuditEvent.objects.filter(seq__gte=checkpoint.first_seq, seq__lte=checkpoint.last_seq)
        .order_by("seq")
        .values_list("hash", flat=True)
    )
    fields = _checkpoint_fields(checkpoint) | {"root": merkle_root(hashes)}
    rewritten = checkpoint_hash(fields)
    _sql(
        "UPDATE exchange_checkpoint SET root = %s, hash = %s, leaves = %s WHERE number = %s",
        [fields["root"], rewritten, b"".join(bytes.fromhex(h) for h in hashes), checkpoint.number],
    )

    code, out = _run("verify_audit")
    against_code, against = _run("verify_audit", "--against", str(kept))

    assert code == 1
    assert f"MISMATCH checkpoint {checkpoint.number}: signature does not verify with key {checkpoint.key_id}" in out
    assert f"MISMATCH event {checkpoint.first_seq}: events {checkpoint.first_seq}..{checkpoint.last_seq}" in out
    assert against_code == 1
    assert (
        f"MISMATCH checkpoint {checkpoint.number}: hash {rewritten} differs from the kept copy's {checkpoint.hash}"
        in against
    )


def test_a_trail_cut_back_is_named_against_a_kept_copy(trail, tmp_path):
    kept = tmp_path / "kept-feed.jsonl"
    kept.write_text("\n".join(json.dumps(doc) for doc in _feed()))
    checkpoint = Checkpoint.objects.order_by("-number").first()
    _triggers_off("exchange_auditevent", "exchange_checkpoint")
    _sql("DELETE FROM exchange_checkpoint WHERE number = %s", [checkpoint.number])

    code, out = _run("verify_audit", "--against", str(kept))

    assert code == 1
    assert f"MISMATCH checkpoint {checkpoint.number}: in the kept copy (hash {checkpoint.hash}) but no longer" in out


# --- the feed and the keys ----------------------------------------------------------------------------------
def test_the_feed_is_public_paged_and_signed(trail):
    ex, a_acc, b_acc = trail
    holder = ex.market.holder("Jingneng")[2]
    for _ in range(2):
        transfer_create(actor=holder, source=a_acc, destination=b_acc, asset=ex.cea, quantity=1)
        audit_seal()
    client = APIClient()

    keys = client.get("/api/v1/audit/public-keys").json()
    first = client.get("/api/v1/audit/checkpoints/feed", {"limit": 2}).json()
    rest = client.get(first["next"]).json()
    bad = client.get("/api/v1/audit/checkpoints/feed", {"after": "x", "limit": 0})

    docs = first["checkpoints"] + rest["checkpoints"]
    assert [int(d["number"]) for d in docs] == list(range(1, Checkpoint.objects.count() + 1))
    assert rest["next"] is None
    assert keys["algorithm"] == "Ed25519"
    assert keys["current"] in keys["keys"]
    assert all(signature_problem(doc, keys["keys"]) is None for doc in docs)
    assert docs == [checkpoint_document(c) for c in Checkpoint.objects.order_by("number")]
    assert bad.status_code == 400
    assert set(bad.json()["error"]["details"]) == {"after", "limit"}


def test_verification_trusts_a_rotated_key_listed_as_public(trail, monkeypatch):
    """After a rotation the old checkpoints still verify while the old public key is listed."""
    from exchange import audit_signing

    old_key = audit_signing.signing_key()
    old_public = old_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    new_key = _attacker_key()
    new_pem = new_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("GREENLEDGER_AUDIT_SIGNING_KEY", new_pem)
    audit_signing.signing_key.cache_clear()
    try:
        assert audit_verify().failure["reason"].endswith("which is not a trusted audit key")
        monkeypatch.setenv("GREENLEDGER_AUDIT_PUBLIC_KEYS", base64.b64encode(old_public).decode())
        assert audit_verify().ok
    finally:
        monkeypatch.undo()
        audit_signing.signing_key.cache_clear()


def test_production_refuses_to_seal_without_a_configured_key(trail, settings, monkeypatch):
    from exchange import audit_signing

    ex, a_acc, b_acc = trail
    transfer_create(actor=ex.market.holder("Jingneng")[2], source=a_acc, destination=b_acc, asset=ex.cea, quantity=1)
    before = Checkpoint.objects.count()
    settings.PRODUCTION = True
    monkeypatch.delenv("GREENLEDGER_AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("GREENLEDGER_AUDIT_SIGNING_KEY_FILE", raising=False)
    audit_signing.signing_key.cache_clear()
    try:
        with pytest.raises(audit_signing.SigningKeyMissing):
            audit_seal()
    finally:
        audit_signing.signing_key.cache_clear()
    assert Checkpoint.objects.count() == before


def test_an_event_naming_a_missing_object_is_named(trail):
    target = AuditEvent.objects.filter(action="transfer.create").order_by("seq").first()
    missing = Transaction.objects.order_by("-id").first().pk + 1000
    _triggers_off("exchange_auditevent")
    _sql("UPDATE exchange_auditevent SET object_id = %s WHERE seq = %s", [str(missing), target.seq])

    code, out = _run("reconcile")

    assert code == 1
    assert (
        f"[5 no event without its object] audit event {target.seq} records transaction {missing}, which does not exist"
        in out
    )
    assert f"[5 every entry has its audit event] transaction {target.object_id} (transfer" in out
