"""Recording audit events, and the ``service`` decorator that makes every service record one.

``audit_record`` writes an ``AuditEvent`` in the caller's database transaction. It takes the audit
writers' shared advisory lock (``exchange.locks``) before drawing the event's sequence number, and holds
it until commit: the sealer takes the same lock exclusively to learn a horizon below which every event
has committed (see ``exchange.services.sealing``). The event is written by the database function
``greenledger_audit_record`` (``exchange/sql``), which every event goes through, and hashed there by
``greenledger_event_hash``.

``@service`` wraps a service in one ``transaction.atomic()`` and refuses (rolls back) a call that
changed state without recording an event, unless it replayed an idempotent request or said it
changed nothing.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from accounts.actors import Actor
from exchange.audit_proof import canonical_json, event_body, format_time
from exchange.db import in_pipeline
from exchange.errors import MissingAuditEvent
from exchange.locks import AUDIT_LOCK_KEY
from exchange.models import AuditEvent

logger = logging.getLogger("greenledger.services")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _Scope:
    name: str
    events: int = 0
    replayed: bool = False
    unchanged: bool = False


_scopes: ContextVar[tuple[_Scope, ...]] = ContextVar("greenledger_service_scopes", default=())
_recorder: ContextVar[list[_Scope] | None] = ContextVar("greenledger_service_recorder", default=None)


@contextmanager
def recording_service_calls() -> Iterator[list[_Scope]]:
    """Collect every service call that completes in the block (name, events recorded, replay).

    Blocks nest: an enclosing block sees the calls of the blocks inside it too.
    """
    calls: list[_Scope] = []
    outer = _recorder.get()
    token = _recorder.set(calls)
    try:
        yield calls
    finally:
        _recorder.reset(token)
        if outer is not None:
            outer.extend(calls)


#: Every public service, by dotted name (the audit-coverage test walks this).
SERVICES: dict[str, Callable[..., Any]] = {}


def service(
    fn: Callable[P, R] | None = None,
    *,
    audited: bool = True,
    one_statement: Callable[..., bool] | None = None,
) -> Any:
    """Mark a public service: one atomic transaction that records at least one audit event.

    ``one_statement(**kwargs)`` says that this call writes everything, its audit event included, in one
    statement (a database function) that is all or nothing by itself. Called outside any transaction, such
    a call runs in autocommit: the statement is the transaction, with no BEGIN and COMMIT round trips.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = f"{func.__module__}.{func.__qualname__}"

        def attempt(*args: P.args, **kwargs: P.kwargs) -> R:
            scope = _Scope(name)
            token = _scopes.set((*_scopes.get(), scope))
            try:
                own = one_statement is not None and not connection.in_atomic_block and one_statement(**kwargs)
                with nullcontext() if own else transaction.atomic():
                    result = func(*args, **kwargs)
                    if audited and not (scope.events or scope.replayed or scope.unchanged):
                        raise MissingAuditEvent(f"{name} changed state without recording an audit event")
            finally:
                _scopes.reset(token)
            recorder = _recorder.get()
            if recorder is not None:
                recorder.append(scope)
            return result

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if connection.in_atomic_block:
                return attempt(*args, **kwargs)  # part of a caller's transaction: the caller retries
            for tries_left in range(RETRIES, -1, -1):
                try:
                    return attempt(*args, **kwargs)
                except OperationalError as exc:
                    if tries_left == 0 or not is_retryable(exc):
                        raise
                    logger.info(
                        "retrying service after a lock conflict", extra={"service": name, "sqlstate": _sqlstate(exc)}
                    )
                    time.sleep(random.uniform(0.005, 0.05))
            raise AssertionError("unreachable")

        wrapper.service_name = name  # type: ignore[attr-defined]
        wrapper.audited = audited  # type: ignore[attr-defined]
        SERVICES[name] = wrapper
        return wrapper

    return decorate(fn) if fn is not None else decorate


RETRIES = 5
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None)


def is_retryable(exc: OperationalError) -> bool:
    """A deadlock or serialization failure: the transaction can be run again from the start."""
    return _sqlstate(exc) in _RETRYABLE_SQLSTATES or "database is locked" in str(exc)


def mark_replayed() -> None:
    """The current service returned an earlier result for the same idempotency key."""
    for scope in _scopes.get():
        scope.replayed = True


def mark_unchanged() -> None:
    """The current service found nothing to do and changed nothing."""
    scopes = _scopes.get()
    if scopes:
        scopes[-1].unchanged = True


def _object_ref(obj: Any) -> tuple[str, str]:
    if isinstance(obj, tuple):
        return str(obj[0]), str(obj[1])
    return obj._meta.model_name, str(obj.pk)


class AuditRef:
    """An event's sequence number and hash, read when first asked for (``seq, digest = ref`` works too).

    In pipeline mode the event's INSERT is queued with the writes before it and its answer is read only if
    someone asks, so recording it costs no round trip of its own.
    """

    __slots__ = ("_cursor", "_row")

    def __init__(self, cursor: Any = None, row: tuple[int, str] | None = None) -> None:
        self._cursor, self._row = cursor, row

    def _get(self) -> tuple[int, str]:
        if self._row is None:
            with connection.wrap_database_errors:
                self._row = tuple(self._cursor.fetchone())
            self._cursor.close()
        return self._row

    @property
    def seq(self) -> int:
        return self._get()[0]

    @property
    def hash(self) -> str:
        return self._get()[1]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())

    def __getitem__(self, index: int) -> Any:
        return self._get()[index]


def audit_record(
    *, actor: Actor, action: str, obj: Any, payload: dict[str, Any], at: datetime | None = None
) -> AuditRef:
    """Write one audit event in the current transaction; return its sequence number and hash.

    ``obj`` is a model instance or a ``(type, id)`` pair. ``payload`` becomes canonical JSON:
    quantities and money must be ints or Decimals (written as strings), never floats.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    moment = at or timezone.now()
    object_type, object_id = _object_ref(obj)
    payload_text = canonical_json(payload)
    body = event_body(
        time=format_time(moment),
        action=action,
        actor_label=actor.label,
        actor_user=actor.user_id,
        actor_participant=actor.participant_id,
        object_type=object_type,
        object_id=object_id,
        payload=payload_text,
    )
    row = (moment, actor.user_id, actor.participant_id, actor.label, action, object_type, object_id, payload_text)
    # One statement (exchange/sql/greenledger_audit_record.sql): the writers' lock, the number, the hash.
    cursor = connection.cursor()
    cursor.execute(
        "SELECT * FROM greenledger_audit_record(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", [*row, body, AUDIT_LOCK_KEY]
    )
    ref = AuditRef(cursor)
    if not in_pipeline():
        ref._get()
    note_recorded()
    return ref


def note_recorded() -> None:
    """An audit event was written in the current service by other means (a database function)."""
    for scope in _scopes.get():
        scope.events += 1


def body_of(event: AuditEvent) -> str:
    """Rebuild an event's canonical body from its columns (what verification hashes)."""
    return event_body(
        time=format_time(event.created_at),
        action=event.action,
        actor_label=event.actor_label,
        actor_user=event.actor_user_id,
        actor_participant=event.actor_participant_id,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
    )
