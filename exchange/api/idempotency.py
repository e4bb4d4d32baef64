"""The Idempotency-Key on every POST that changes something (docs/architecture.md, Idempotency).

One rule for every keyed endpoint, through the one claim/replay API (``exchange.services.idempotency``):
the same key with the same request answers as the first time did and changes nothing; the same key with
another request (another body, query or endpoint) is refused with 409 ``idempotency_conflict``. Keys belong
to the caller's participant. A refused request (4xx, 5xx) leaves its key unused. A replayed answer carries
``Idempotent-Replayed: true``. A twin of a request still running waits for its answer, and after
``WAIT_SECONDS`` is refused with 409 ``request_in_progress`` and ``Retry-After``.

``idempotent_request`` runs the handler in one database transaction that first claims the key and at the
end keeps the rendered answer with it, so the claim commits exactly when the effect does. Views call
their services without the key: the request holds it. The services' own transactions become savepoints
of this one, so a deadlock is retried here, from the start, as ``@service`` retries it when it runs alone.

The decorator sets ``handler.idempotency = "request"``: tests/exchange/api/test_idempotency.py walks the URLs and fails
for a POST that has none and is not exempted there.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, connection, transaction
from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import actor_of
from config.api import idempotency_key
from config.renderers import render_json
from core.errors import DomainError
from exchange.api.base import IDEMPOTENCY_PARAMETER
from exchange.models import IdempotentRequest
from exchange.services.audit import RETRIES, is_retryable, recording_service_calls
from exchange.services.idempotency import idempotency_answer, idempotency_claim, idempotency_digest, idempotency_scope

logger = logging.getLogger("greenledger.api")

REPLAYED_HEADER = "Idempotent-Replayed"

Handler = Callable[..., Response]


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
    return idempotency_digest(
        {
            "method": request.method,
            "path": request.path,
            "query": _plain(request.query_params),
            "body": _plain(request.data),
        }
    )


def _plain(value: Any) -> Any:
    """Parsed request data as canonical JSON takes it: form data as lists, each scalar tagged with its type.

    Canonical JSON writes an integer as a string, so untagged ``{"source": 0}`` and ``{"source": "0"}`` had one
    digest and a request the schema refuses was answered with the stored reply of the one it accepts.
    """
    if isinstance(value, QueryDict):
        return {k: [_plain(v) for v in value.getlist(k)] for k in value}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return "s:" + value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, float):
        return "n:" + format(Decimal(repr(value)), "f")
    if isinstance(value, UploadedFile):  # an uploaded file counts by its content
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": digest.hexdigest()}
    return value


def _keyed(
    handler: Handler,
    view: Any,
    request: Request,
    key: str,
    digest: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Response:
    refusal: DomainError | None = None
    with transaction.atomic():
        claim = idempotency_claim(
            scope=idempotency_scope(actor_of(request)),
            key=key,
            method=request.method or "POST",
            operation=request.path,
            digest=digest,
        )
        if claim.first is not None:
            first = claim.first
            data = json.loads(first.body) if first.body else None
            return Response(data, status=first.status, headers={REPLAYED_HEADER: "true"})
        assert claim.row_id is not None
        with recording_service_calls() as calls:
            try:
                response = handler(view, request, *args, **kwargs)
            except DomainError as exc:
                if not getattr(exc, "recorded", False):
                    raise
                # A refusal the service records (a take-back's shortfall) commits; the key stays free.
                IdempotentRequest.objects.filter(pk=claim.row_id).delete()
                refusal = exc
        if refusal is None:
            if not 200 <= response.status_code < 300:
                transaction.set_rollback(True)  # a refusal answered without raising: the key stays unused
                return response
            body = render_json(response.data).decode()
            idempotency_answer(claim.row_id, status=response.status_code, body=body)
    if refusal is not None:
        raise refusal
    return _said_replayed(response, calls)


def _said_replayed(response: Response, calls: list[Any]) -> Response:
    """Say so when the services answered with an earlier result: one replayed and none recorded an event."""
    if any(call.replayed for call in calls) and not any(call.events for call in calls):
        response[REPLAYED_HEADER] = "true"
    return response
