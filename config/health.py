"""Liveness and readiness, and a database outage answered as a 503 the client can retry.

``/health/`` says the process answers (it touches nothing else: a load balancer restarts a process that
fails it, and a database outage is no reason to restart web processes). ``/ready/`` checks each
dependency with a short timeout and names it: ``database``, ``broker`` (Redis, where jobs are queued),
``cache`` (Redis, where throttle counters are kept); 200 when all answer, else 503. A small view rather
than django-health-check: three checks, the project's own JSON shape, and no extra app and tables.

While PostgreSQL is unreachable every request that needs it ends in ``OperationalError`` or
``InterfaceError``; those are answered ``503 service_unavailable`` with ``Retry-After`` (JSON on the API),
never ``500 server_error``. Nothing needs a restart afterwards: Django checks a connection that saw an
error at the start of the next request and opens a new one (``conn_health_checks``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

logger = logging.getLogger("greenledger.health")

RETRY_AFTER_SECONDS = 5
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """The answer to a request that met a database outage."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "error": {
                    "code": "service_unavailable",
                    "message": _("The database is unavailable; please retry shortly."),
                    "details": {"retry_after_seconds": RETRY_AFTER_SECONDS},
                }
            },
            status=503,
        )
    else:
        response = HttpResponse(
            _("The service is briefly unavailable; please retry shortly."),
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def outage_in_flight() -> bool:
    """Whether the exception being handled now is a database outage (for the 500 handler)."""
    return isinstance(sys.exc_info()[1], OUTAGE_ERRORS)


class DatabaseOutageMiddleware:
    """A view that meets a database outage answers 503 with Retry-After (``config.api.json_500`` does the
    same for one met outside a view with DEBUG off, and the throttle middleware that checks API tokens for one
    met there, with DEBUG on too: ``outage_met``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OUTAGE_ERRORS):
            return outage_met(request, exception)
        return None


def outage_met(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Log a database outage a request met and answer it (``database_unavailable``): for a view, by
    ``DatabaseOutageMiddleware``; for a middleware of ours that reads the database (the API token's check), by
    that middleware, since Django answers an exception raised in a middleware with its HTML debug page when
    DEBUG is on, before any outer middleware sees it (``json_500`` answers it with DEBUG off)."""
    logger.warning("database unavailable", extra={"path": request.path, "error": str(exception)})
    return database_unavailable(request)


# --- the endpoints ----------------------------------------------------------------------------------------
def _timed(check: Callable[[], str]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail = check()
        result: dict[str, Any] = {"status": "ok"}
        if detail:
            result["detail"] = detail
    except Exception as exc:
        result = {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.monotonic() - started) * 1000)
    return result


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        if not connection.in_atomic_block:
            connection.close()  # the next request opens a fresh one
        raise
    return ""


def check_broker() -> str:
    from config.celery import app

    url = app.conf.broker_url or ""
    if url.startswith("memory"):
        return "in-process broker"
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return ""


def check_cache() -> str:
    key = "health:ready"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("the cache did not keep a value")
    return ""


CHECKS: dict[str, Callable[[], str]] = {"database": check_database, "broker": check_broker, "cache": check_cache}


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: each dependency and whether it answers."""
    checks = {name: _timed(check) for name, check in CHECKS.items()}
    ok = all(c["status"] == "ok" for c in checks.values())
    response = JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
    if not ok:
        logger.warning("not ready", extra={"unavailable": [n for n, c in checks.items() if c["status"] != "ok"]})
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
