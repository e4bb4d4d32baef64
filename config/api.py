"""API plumbing shared by every endpoint: the error body, pagination, the Idempotency-Key header."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from django.urls import resolve
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.health import database_unavailable, outage_in_flight
from core.errors import DomainError
from core.idempotency import IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY_LENGTH, key_is_valid

logger = logging.getLogger("greenledger.api")


_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            text = _first_message(value)
            return text if key == "non_field_errors" else f"{key}: {text}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every refusal as the JSON error body (docs/architecture.md, Errors)."""
    if isinstance(exc, DomainError):
        set_rollback()
        # A refusal that ends by itself (a keyed request still running) says when to ask again.
        retry_after = getattr(exc, "retry_after", None)
        ends = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status, headers=ends)
    if isinstance(exc, RequestDataTooBig):
        # Raised where the view first reads the body. Left to Django it is answered by ``json_400`` only
        # with DEBUG off; with DEBUG on (make run) Django's HTML debug page answered it.
        set_rollback()
        return Response(_too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DataError):
        # Input the database can't store (a NUL character, a number out of range) that no field caught:
        # the client's error, but logged in full because a field should have caught it.
        logger.warning("database refused a value from a request", exc_info=exc)
        set_rollback()
        return Response(
            error_body(
                "invalid",
                _("The request holds a value that can't be stored (e.g. a NUL character or an out-of-range number)."),
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), exc.default_code)
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    # Throttled.__init__ sets wait (seconds, or None); the DRF stubs don't declare the attribute.
    wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]
    if wait is not None:
        headers["Retry-After"] = str(int(wait) + 1)
    request = context.get("request")
    if isinstance(exc, exceptions.UnsupportedMediaType) or (
        isinstance(exc, exceptions.ValidationError) and _form_encoded(request)
    ):
        # curl -d without a Content-Type sends a form: say the API takes JSON, not that every field is missing.
        media_type = request.content_type if request is not None else ""
        return Response(
            error_body(
                "unsupported_media_type",
                str(_(JSON_ONLY_MESSAGE)),
                {"content_type": media_type, "expected": "application/json"},
            ),
            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )
    if isinstance(exc, exceptions.ValidationError):
        details: dict[str, Any] = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = _first_message(details)
        # An unknown choice or reference says so in its own code, so clients can branch on it.
        codes = exc.get_codes()
        flat = _flatten_codes(codes)
        if len(set(flat)) == 1 and flat[0] not in {"invalid", "required", "null", "blank"}:
            code = flat[0]
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)
    details = {}
    if wait is not None:
        details["retry_after_seconds"] = int(wait) + 1
    return Response(error_body(code, str(exc.detail), details), status=exc.status_code, headers=headers)


JSON_ONLY_MESSAGE = gettext_noop(
    "The API takes JSON bodies: send the body as JSON with the header 'Content-Type: application/json' "
    "(with curl: -H 'Content-Type: application/json')."
)


def _form_encoded(request: Any) -> bool:
    """A form body sent to a view that takes none (DRF then reads it as an empty form: every field missing)."""
    content_type = getattr(request, "content_type", "") or ""
    if content_type.split(";")[0].strip().lower() not in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return False
    parsers = getattr(request, "parsers", None) or []
    return request.negotiator.select_parser(request, parsers) is None


def _flatten_codes(codes: Any) -> list[str]:
    if isinstance(codes, dict):
        return [c for v in codes.values() for c in _flatten_codes(v)]
    if isinstance(codes, list):
        return [c for v in codes for c in _flatten_codes(v)]
    return [str(codes)]


def json_404(request: Any, exception: Exception | None = None) -> Any:
    """JSON for the API, Django's page for everything else (the admin, public pages)."""
    if request.path.startswith("/api/"):
        path = request.path
        if path.endswith("/") and path != "/api/v1/" and _routes_to(path.rstrip("/")):
            # The API's paths end without a slash: name the one the client meant.
            return JsonResponse(
                error_body(
                    "not_found",
                    _("No such endpoint: %(path)s ends with a slash; the API's paths don't. Use %(meant)s.")
                    % {"path": path, "meant": path.rstrip("/")},
                    {"path": path, "did_you_mean": path.rstrip("/")},
                ),
                status=status.HTTP_404_NOT_FOUND,
            )
        return JsonResponse(error_body("not_found", _("No such endpoint or object.")), status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception or Http404())


def _routes_to(path: str) -> bool:
    try:
        resolve(path)
    except Http404:
        return False
    return True


def _too_large_body() -> dict[str, Any]:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body(
        "request_too_large",
        str(_("The request body is larger than this API accepts.")),
        {"max_bytes": limit} if limit is not None else {},
    )


def json_400(request: Any, exception: Exception | None = None) -> Any:
    """Requests Django itself refuses before any view runs (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too
    many form fields, a disallowed host...): the JSON error body for the API, Django's page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception or SuspiciousOperation())
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(_too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    return JsonResponse(
        error_body("malformed_request", str(_("The request is malformed."))), status=status.HTTP_400_BAD_REQUEST
    )


def json_500(request: Any) -> Any:
    if outage_in_flight():  # the database went away: a 503 to retry, not a server error
        return database_unavailable(request)
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("server_error", _("An unexpected error occurred; it has been logged.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)


def idempotency_key(request: Request) -> str | None:
    """The client's Idempotency-Key, validated; None when the client sent none."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key_is_valid(key):
        raise exceptions.ValidationError(
            {IDEMPOTENCY_HEADER: [_("must be 1 to %(max)s printable characters") % {"max": MAX_IDEMPOTENCY_KEY_LENGTH}]}
        )
    return key
