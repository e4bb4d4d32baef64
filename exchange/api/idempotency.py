"""The Idempotency-Key on every POST that changes something (docs/architecture.md, Idempotency).

One rule, whichever way a handler is keyed: the same key with the same request answers as the first time
did and changes nothing; the same key with another request (another body, query or endpoint) is refused
with 409 ``idempotency_conflict``. Keys belong to the caller's participant. A refused request (4xx, 5xx)
leaves its key unused. A replayed answer carries ``Idempotent-Replayed: true``.

- ``keyed_by_service``: the handler gives the key to its service, which keeps it with what it makes:
  the journal entry (``exchange.services.ledger.journal_open``), or a pledge, a pledge's collateral, a
  pending transfer, an allocation entry, each under a unique index. The decorator only marks the handler
  and adds the replay header.
- ``idempotent_request``: every other handler. With a key, the handler runs in one database transaction
  that first inserts the ``IdempotentRequest`` row for (scope, key) and at the end stores the answer in it,
  so the row commits exactly when the effect does. A twin request blocks on the row's unique index until
  the first commits, then finds the stored answer; if the first rolled back, the twin runs afresh.
  The services' own transactions become savepoints of this one, so a deadlock is retried here, from the
  start, as ``@service`` retries it when it runs alone.

Both set ``handler.idempotency`` (``"service"`` or ``"request"``): tests/test_idempotency.py walks the
URLs and fails for a POST that has neither and is not exempted there.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.db import OperationalError, connection, transaction
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import actor_of
from config.api import idempotency_key
from exchange.api.base import IDEMPOTENCY_PARAMETER
from exchange.audit_proof import canonical_json, sha256_hex
from exchange.errors import IdempotencyConflict
from exchange.models import IdempotentRequest
from exchange.services.audit import RETRIES, is_retryable, recording_service_calls
from exchange.services.ledger import idempotency_scope

logger = logging.getLogger("greenledger.api")

REPLAYED_HEADER = "Idempotent-Replayed"

Handler = Callable[..., Response]


def keyed_by_service(handler: Handler) -> Handler:
    """Mark a handler whose service keeps the request's Idempotency-Key with what it makes."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        with recording_service_calls() as calls:
            response = handler(view, request, *args, **kwargs)
        return _said_replayed(response, calls)

    wrapper.idempotency = "service"  # type: ignore[attr-defined]
    return wrapper


def idempotent_request(handler: Handler) -> Handler:
    """Key the handler's answer by the request's Idempotency-Key, in the transaction of its effect."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = idempotency_key(request)
        if key is None:
            with recording_service_calls() as calls:
                response = handler(view, request, *args, **kwargs)
            return _said_replayed(response, calls)
        digest = request_digest(request)
        if connection.in_atomic_block:
            return _keyed(handler, view, request, key, digest, args, kwargs)  # the caller's transaction retries
        for tries_left in range(RETRIES, -1, -1):
            try:
                return _keyed(handler, view, request, key, digest, args, kwargs)
            except OperationalError as exc:
                if tries_left == 0 or not is_retryable(exc):
                    raise
                logger.info("retrying a keyed request after a lock conflict", extra={"path": request.path})
                time.sleep(random.uniform(0.005, 0.05))
        raise AssertionError("unreachable")

    wrapper.idempotency = "request"  # type: ignore[attr-defined]
    return extend_schema(parameters=[IDEMPOTENCY_PARAMETER])(wrapper)


def request_digest(request: Request) -> str:
    """sha256 of the request's method, path, query and body as canonical JSON (key order and spacing don't count)."""
    return sha256_hex(
        canonical_json(
            {
                "method": request.method,
                "path": request.path,
                "query": _plain(request.query_params),
                "body": _plain(request.data),
            }
        )
    )


def _plain(value: Any) -> Any:
    """Parsed request data as canonical JSON takes it: form data as lists, floats as decimals."""
    if isinstance(value, QueryDict):
        return {k: value.getlist(k) for k in value}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    return value  # str, int, bool, None; anything else (an upload) is refused by canonical_json: key it elsewhere


def _keyed(
    handler: Handler,
    view: Any,
    request: Request,
    key: str,
    digest: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Response:
    scope = idempotency_scope(actor_of(request))
    with transaction.atomic():
        row_id = _claim(scope, key, request, digest)
        if row_id is None:
            return _replay(scope, key, digest)
        with recording_service_calls() as calls:
            response = handler(view, request, *args, **kwargs)
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)  # a refusal answered without raising: the key stays unused
            return response
        body = JSONRenderer().render(response.data).decode()
        IdempotentRequest.objects.filter(pk=row_id).update(status=response.status_code, body=body)
    return _said_replayed(response, calls)


def _claim(scope: str, key: str, request: Request, digest: str) -> int | None:
    """Insert the key's row; None if the key has one already (after waiting for its transaction to end)."""
    table = IdempotentRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (scope, key, method, path, request_hash, body, created_at) "
            "VALUES (%s, %s, %s, %s, %s, '', %s) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
            [scope, key, request.method, request.path[:300], digest, timezone.now()],
        )
        inserted = cursor.fetchone()
    return inserted[0] if inserted else None


def _replay(scope: str, key: str, digest: str) -> Response:
    first = IdempotentRequest.objects.get(scope=scope, key=key)
    if first.request_hash != digest:
        raise IdempotencyConflict(
            details={"idempotency_key": key, "first_request": f"{first.method} {first.path}"},
        )
    if first.status is None:
        raise RuntimeError(f"idempotent request {first.pk} committed without its answer")
    data = json.loads(first.body) if first.body else None
    return Response(data, status=first.status, headers={REPLAYED_HEADER: "true"})


def _said_replayed(response: Response, calls: list[Any]) -> Response:
    """Say so when the services answered with an earlier result: one replayed and none recorded an event."""
    if any(call.replayed for call in calls) and not any(call.events for call in calls):
        response[REPLAYED_HEADER] = "true"
    return response
