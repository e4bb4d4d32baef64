"""The ``@service`` wrapper every service wears, and the audit port the apps below exchange record through.

``@service`` wraps a service in one ``transaction.atomic()`` and refuses (rolls back) a call that
changed state without recording an audit event, unless it replayed an idempotent request or said it
changed nothing. A deadlock or serialization failure outside a caller's transaction runs it again.

Audit events are written by ``exchange.services.audit.audit_record`` (the ``AuditEvent`` table lives in
the exchange app). An app below exchange (``accounts``) records through ``audit_record`` here, which calls
the recorder the exchange app installs when it starts (``ExchangeConfig.ready``). This module imports no
app, so every app can import it.
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

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, transaction

from core.errors import MissingAuditEvent

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
    return _sqlstate(exc) in _RETRYABLE_SQLSTATES


def mark_replayed() -> None:
    """The current service returned an earlier result for the same idempotency key."""
    for scope in _scopes.get():
        scope.replayed = True


def mark_unchanged() -> None:
    """The current service found nothing to do and changed nothing."""
    scopes = _scopes.get()
    if scopes:
        scopes[-1].unchanged = True


def note_recorded() -> None:
    """An audit event was written in the current service by other means (a database function)."""
    for scope in _scopes.get():
        scope.events += 1


AuditRecorder = Callable[..., Any]
_audit_recorder: AuditRecorder | None = None


def audit_recorder_install(recorder: AuditRecorder) -> None:
    """Set the function that writes audit events (the exchange app installs its ``audit_record``)."""
    global _audit_recorder
    _audit_recorder = recorder


def audit_record(*, actor: Any, action: str, obj: Any, payload: dict[str, Any], at: datetime | None = None) -> Any:
    """Write one audit event in the current transaction, through the installed recorder."""
    if _audit_recorder is None:
        raise ImproperlyConfigured("No audit recorder is installed: the exchange app installs it when it starts.")
    return _audit_recorder(actor=actor, action=action, obj=obj, payload=payload, at=at)
