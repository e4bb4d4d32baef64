"""The journal entry of an operation: opened once per operation, found again for a replayed key.

Every movement is a journal entry (``exchange.models.Transaction``) opened by ``journal_open`` through the
one INSERT of an entry, ``greenledger_journal_open`` (``exchange/sql``), then posted by ``ledger_post``
(``exchange.services.ledger``). See docs/architecture.md, The posting path.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connection

from accounts.actors import Actor
from core import clock
from exchange.audit_proof import canonical_json, sha256_hex
from exchange.errors import IdempotencyConflict
from exchange.models import Transaction
from exchange.services.audit import mark_replayed
from exchange.services.idempotency import idempotency_scope


def request_hash(kind: str, request: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({"kind": kind, "request": request}))


def journal_open(
    *,
    kind: str,
    actor: Actor,
    idempotency_key: str | None,
    request: dict[str, Any],
    memo: str = "",
    metadata: dict[str, Any] | None = None,
    at: datetime | None = None,
    scope: str | None = None,
) -> tuple[Transaction, bool]:
    """Open the journal entry of an operation, or find the one an earlier call with this key opened.

    Returns ``(transaction, replayed)``. With a key already used for the same request, the earlier
    transaction is returned and ``replayed`` is True: the caller returns it and changes nothing. With a
    key used for a different request, ``IdempotencyConflict``. Two callers racing with one key: the
    second waits on the unique index until the first commits, then replays it. Keys are scoped to the
    actor's participant unless ``scope`` names a wider one (an issuance reference is registry-wide).
    """
    if scope is None:
        scope = idempotency_scope(actor)
    digest = request_hash(kind, request)
    now = at or clock.now()
    row: list[Any] = [
        kind,
        actor.user_id,
        actor.participant_id,
        actor.label,
        scope,
        idempotency_key,
        digest,
        memo[:500],
        json.dumps(metadata or {}, sort_keys=True, default=str),
        now,
    ]
    with connection.cursor() as cursor:
        # The one INSERT of a journal entry (exchange/sql/greenledger_journal_open.sql): NULL if the key is taken.
        cursor.execute("SELECT greenledger_journal_open(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)", row)
        inserted = cursor.fetchone()
    if inserted is None or inserted[0] is None:
        return journal_replay(scope=scope, idempotency_key=idempotency_key, digest=digest), True
    txn = Transaction(
        id=inserted[0],
        kind=kind,
        actor_user_id=actor.user_id,
        actor_participant_id=actor.participant_id,
        actor_label=actor.label,
        idempotency_scope=scope,
        idempotency_key=idempotency_key,
        request_hash=digest,
        memo=memo[:500],
        metadata=json.loads(row[8]),
        created_at=now,
    )
    txn._state.adding = False
    return txn, False


def journal_replay(*, scope: str, idempotency_key: str | None, digest: str) -> Transaction:
    """The entry an earlier request with this key opened; ``IdempotencyConflict`` if it asked for another."""
    existing = Transaction.objects.get(idempotency_scope=scope, idempotency_key=idempotency_key)
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            details={"idempotency_key": idempotency_key, "transaction": existing.pk, "kind": existing.kind}
        )
    mark_replayed()
    return existing
