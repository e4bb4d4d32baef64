"""The one Idempotency-Key mechanism: one store (``exchange.models.IdempotentRequest``), one claim/replay API.

Every keyed request that changes something claims its key here, in the database transaction of its effect:

- an API POST through ``exchange.api.idempotency.idempotent_request``, which keeps the rendered answer;
- a service called with ``idempotency_key`` from the admin, a management command or a task (API views
  claim the key themselves and call the service without it), through ``keyed_call``, which keeps the id
  of what the service made.

A key belongs to the caller's participant (``idempotency_scope``) and names one request: an operation (the
endpoint, or the service) and a digest of its input. The same key for the same request answers as the
first time did and changes nothing; for another operation or input it is ``IdempotencyConflict`` (409
``idempotency_conflict``). The claim row is written in the transaction of the effect, so a refused or
failed request leaves its key free, and the row exists exactly when the effect does.

Concurrent requests with one key: the first takes a transaction-scoped advisory lock on the key with its
claim and holds it until it commits. A twin polls for that lock up to ``WAIT_SECONDS``: once it gets it,
the first has ended, and the twin replays its answer (or, if the first rolled back, runs afresh); if the
first is still running after that, the twin is refused with ``RequestInProgress`` (409
``request_in_progress``, ``Retry-After``). No twin ever reaches a unique-index error.

The answers are a retry window, not a record: the effect and its audit event stand on their own, and the
answers are forgotten after ``GREENLEDGER["IDEMPOTENCY_RETENTION_DAYS"]`` (``idempotent_requests_forget``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.actors import Actor
from core.idempotency import MAX_IDEMPOTENCY_KEY_LENGTH, key_is_valid
from exchange.audit_proof import canonical_json, sha256_hex
from exchange.errors import IdempotencyConflict, InvalidInput, RequestInProgress
from exchange.locks import IDEMPOTENCY_LOCK_CLASS
from exchange.models import IdempotentRequest
from exchange.services.audit import mark_replayed

BATCH = 10_000
# How long a twin waits for the first request with its key before answering request_in_progress.
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.02
# What ``IdempotentRequest.method`` says for a key claimed by a service call rather than an HTTP request.
SERVICE_METHOD = "CALL"

P = ParamSpec("P")
R = TypeVar("R")


def idempotency_scope(actor: Actor) -> str:
    """Whose key it is: the actor's participant, or the system actor's label."""
    return f"participant:{actor.participant_id}" if actor.participant_id else actor.label


def idempotency_digest(value: Any) -> str:
    """sha256 of a request as canonical JSON: the same request always has the same digest."""
    return sha256_hex(canonical_json(value))


def check_key(key: str) -> str:
    """A key as every caller may use it: 1 to 128 printable characters (the API checks the header the same way)."""
    if not key_is_valid(key):
        raise InvalidInput(
            gettext("An Idempotency-Key is 1 to %(most)s printable characters.") % {"most": MAX_IDEMPOTENCY_KEY_LENGTH},
            details={"idempotency_key": key[:MAX_IDEMPOTENCY_KEY_LENGTH]},
        )
    return key


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of ``idempotency_claim``: this caller owns the key (``row_id``), or ``first`` answered it."""

    row_id: int | None
    first: IdempotentRequest | None


def idempotency_claim(*, scope: str, key: str, method: str, operation: str, digest: str) -> Claim:
    """Claim ``key`` for this request inside the current transaction, or find the request that has it.

    ``Claim(row_id, None)``: the key is ours; do the effect, then ``idempotency_answer``. ``Claim(None, first)``:
    the same request ran before (replay ``first``). ``IdempotencyConflict``: the key names another request.
    ``RequestInProgress``: the first request with the key is still running after ``WAIT_SECONDS``.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("an Idempotency-Key is claimed inside the transaction of its effect")
    check_key(key)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        got, row_id = _try_claim(scope, key, method, operation, digest)
        if got:
            break
        if time.monotonic() >= deadline:
            raise RequestInProgress(
                details={"idempotency_key": key, "retry_after_seconds": RequestInProgress.retry_after}
            )
        time.sleep(POLL_SECONDS)
    if row_id is not None:
        return Claim(row_id, None)
    first = IdempotentRequest.objects.get(scope=scope, key=key)
    _check_first(first, key, method, operation, digest)
    return Claim(None, first)


def _check_first(first: IdempotentRequest, key: str, method: str, operation: str, digest: str) -> None:
    """``first`` holds ``key``: it must be this request, answered (then this one is a replay)."""
    if first.method != method or first.path != operation[:300] or first.request_hash != digest:
        raise IdempotencyConflict(details={"idempotency_key": key, "first_request": f"{first.method} {first.path}"})
    if first.status is None:
        raise RuntimeError(f"idempotent request {first.pk} committed without its answer")
    mark_replayed()


def _try_claim(scope: str, key: str, method: str, operation: str, digest: str) -> tuple[bool, int | None]:
    """(the key's lock was free, the new row's id or None if the key has a row). One round trip."""
    table = IdempotentRequest._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        # The key's advisory lock, without waiting, then the row if the lock was free.
        cursor.execute(
            "WITH lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(%s::int, hashtext(%s)) AS got), "
            f"ins AS (INSERT INTO {table} (scope, key, method, path, request_hash, body, created_at) "
            "SELECT %s, %s, %s, %s, %s, '', %s FROM lock WHERE got "
            "ON CONFLICT (scope, key) DO NOTHING RETURNING id) "
            "SELECT (SELECT got FROM lock), (SELECT id FROM ins)",
            [IDEMPOTENCY_LOCK_CLASS, f"{scope}\n{key}", scope, key, method, operation[:300], digest, now],
        )
        got, row_id = cursor.fetchone()
        return bool(got), row_id


def idempotency_answer(row_id: int, *, status: int, body: str) -> None:
    """Keep the answer of the request that claimed ``row_id`` (in its transaction, before it commits)."""
    IdempotentRequest.objects.filter(pk=row_id).update(status=status, body=body)


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A keyed service request, ready to be claimed: whose key, which key, for what operation and input.

    ``run`` claims it with ``idempotency_claim`` and keeps the answer with ``idempotency_answer``. A
    service that does its whole effect in one database statement claims it in that statement instead
    (``greenledger_transfer`` does, for a transfer): the statement takes the key's lock without waiting,
    writes the same row with the same fields and keeps the same ``answer``, so either way of claiming
    sees and replays the other's rows.
    """

    scope: str
    key: str
    operation: str  # the stored ``path``: service:<operation>
    digest: str
    method: str = SERVICE_METHOD

    @classmethod
    def of(cls, *, actor: Actor, key: str, operation: str, request: Any) -> KeyedRequest:
        return cls(
            scope=idempotency_scope(actor),
            key=check_key(key),
            operation=f"service:{operation}"[:300],
            digest=idempotency_digest(request),
        )

    @property
    def lock_name(self) -> str:
        """What the key's advisory lock is taken on (``hashtext`` of it, in ``IDEMPOTENCY_LOCK_CLASS``)."""
        return f"{self.scope}\n{self.key}"

    def replay(self, *, replayed: Callable[[Any], R] | None = None) -> R:
        """The answer of the first request with this key (the key has a row): ``IdempotencyConflict`` if
        that row names another request."""
        first = IdempotentRequest.objects.get(scope=self.scope, key=self.key)
        _check_first(first, self.key, self.method, self.operation, self.digest)
        answer = json.loads(first.body)
        row = apps.get_model(answer["model"])._default_manager.get(pk=answer["id"])
        return replayed(row) if replayed is not None else row

    def run(
        self,
        call: Callable[[], R],
        *,
        kept: Callable[[Any], models.Model] | None = None,
        replayed: Callable[[Any], R] | None = None,
    ) -> R:
        """``call()`` once per key, in one transaction with the claim; the first result on a replay."""
        with transaction.atomic():
            claim = idempotency_claim(
                scope=self.scope, key=self.key, method=self.method, operation=self.operation, digest=self.digest
            )
            if claim.first is not None:
                answer = json.loads(claim.first.body)
                row = apps.get_model(answer["model"])._default_manager.get(pk=answer["id"])
                return replayed(row) if replayed is not None else row
            assert claim.row_id is not None
            result = call()
            row = kept(result) if kept is not None else result
            idempotency_answer(claim.row_id, status=200, body=answer_body(row))  # type: ignore[arg-type]
            return result


def answer_body(row: models.Model) -> str:
    """What a keyed service call keeps as its answer: the row it made, by model label and id."""
    return json.dumps({"model": row._meta.label_lower, "id": row.pk})


_claimed_here: ContextVar[KeyedRequest | None] = ContextVar("greenledger_keyed_request", default=None)


def keyed_request() -> KeyedRequest | None:
    """Inside a service marked ``@idempotent_service(..., one_statement=...)`` whose predicate held: the
    keyed request the service claims itself, in its one statement. None otherwise (no key, or the
    decorator claimed it already)."""
    return _claimed_here.get()


def keyed_call(
    *,
    actor: Actor,
    key: str | None,
    operation: str,
    request: Any,
    call: Callable[[], R],
    kept: Callable[[Any], models.Model] | None = None,
    replayed: Callable[[Any], R] | None = None,
) -> R:
    """Run a service's effect once per key: ``call()`` under a fresh key, the first result on a replay.

    For services that take ``idempotency_key``: the key is claimed for ``service:<operation>`` and the
    request's digest; the answer kept names the model row the call made (``kept(result)``, by default the
    result itself), and a replay answers ``replayed(row)`` (by default the row). Without a key, ``call()``.
    """
    if key is None:
        return call()
    keyed = KeyedRequest.of(actor=actor, key=key, operation=operation, request=request)
    return keyed.run(call, kept=kept, replayed=replayed)


def idempotent_service(
    operation: str,
    *,
    kept: Callable[[Any], models.Model] | None = None,
    replayed: Callable[[Any], Any] | None = None,
    one_statement: Callable[..., bool] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Key a service by its ``idempotency_key`` argument through ``keyed_call``; put it under ``@service``.

    The body runs without the key (its ``idempotency_key`` is None): the claim is made here, with a
    digest of every other argument (model instances by label and id), and a replay answers with the row
    the first call returned (``kept`` and ``replayed`` as for ``keyed_call``). ``actor`` may be None for a
    system run (its scope is then the system actor's label).

    ``one_statement(**kwargs)``: this call claims the key itself, in the one statement that does its
    effect; the body finds the ``KeyedRequest`` through ``keyed_request()`` and must claim it (or hand it
    to ``KeyedRequest.run`` when it takes another route).
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = kwargs.pop("idempotency_key", None)
            if key is None:
                return func(*args, **kwargs)
            # Every argument, defaults included: leaving one out or passing its default is the same request.
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            actor = bound.arguments.get("actor")
            request = {k: v for k, v in bound.arguments.items() if k not in {"actor", "idempotency_key"}}
            keyed = KeyedRequest.of(
                actor=actor if isinstance(actor, Actor) else Actor.system(operation),
                key=str(key),
                operation=operation,
                request=_plain(request),
            )
            if one_statement is not None and one_statement(**kwargs):
                token = _claimed_here.set(keyed)
                try:
                    return func(*args, **kwargs)
                finally:
                    _claimed_here.reset(token)
            return keyed.run(lambda: func(*args, **kwargs), kept=kept, replayed=replayed)

        wrapper.idempotent_service = operation  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _plain(value: Any) -> Any:
    """A service's arguments as canonical JSON takes them: rows by label and id, dataclasses as dicts of
    the fields they compare by."""
    if isinstance(value, models.Model):
        return [value._meta.label_lower, value.pk]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field that takes no part in equality (where a row came from) takes none in the request either.
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def idempotent_requests_forget(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Delete kept answers older than the retention period, up to ``batch`` of them; return how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.GREENLEDGER["IDEMPOTENCY_RETENTION_DAYS"])
    with transaction.atomic():
        ids = list(
            IdempotentRequest.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch]
        )
        deleted, _ = IdempotentRequest.objects.filter(id__in=ids).delete()
    return deleted
