"""The OpenAPI schema: every operation documents the error body and the statuses it can answer, every
keyed POST refers to the one ``Idempotency-Key`` header parameter (``components.parameters``), and the
schema view builds it once per process (it is the same for every caller and costs a large fraction of a
second of CPU to generate, so an anonymous client could otherwise spend ours at will)."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.utils import translation
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.idempotency import IDEMPOTENCY_HEADER

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "insufficient_available"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

ERRORS = {
    "400": "Malformed or invalid input (validation_error codes per field in details).",
    "401": "Missing or invalid credentials.",
    "403": "Not allowed for this participant, role or kind (e.g. participant_suspended).",
    "404": "Unknown, or not yours.",
    "409": "A business rule or state conflict (e.g. insufficient_available, idempotency_conflict, "
    "request_in_progress with Retry-After).",
    "429": "Throttled; see Retry-After.",
}


def operation_codes(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """Every error code an operation can answer: those of its kind (authenticated, with a body, keyed, naming
    an object) and those its view declares (``x-error-codes``, see config.openapi)."""
    codes = {"throttled", "server_error", "service_unavailable", "authentication_failed", "method_not_allowed"}
    if {} not in operation.get("security", []):  # not open to anonymous callers
        codes |= {"not_authenticated", "permission_denied"}
    if "{" in path:
        codes.add("not_found")
    if method in {"post", "put", "patch"}:
        codes |= {"invalid", "malformed_request", "unsupported_media_type", "request_too_large"}
    if any(p.get("name") == IDEMPOTENCY_HEADER for p in operation.get("parameters", []) if isinstance(p, dict)):
        codes |= {"idempotency_conflict", "request_in_progress"}
    codes |= set(operation.get("x-error-codes", []))
    return sorted(codes)


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    from core.errors import catalogue

    known = catalogue()
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = operation_codes(path, method, operation)
            operation["x-error-codes"] = codes
            by_status: dict[str, list[str]] = {}
            for code in codes:
                if code in known:
                    by_status.setdefault(str(known[code].status), []).append(code)
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
            for status, listed in by_status.items():
                if status in responses and not status.startswith("2"):
                    text = responses[status].get("description", "")
                    responses[status]["description"] = f"{text} Codes: {', '.join(listed)} (docs/errors.md)."
    return result


_built: dict[tuple[str | None, str | None], dict[str, Any]] = {}
_build_lock = threading.Lock()


class SchemaView(SpectacularAPIView):
    """drf-spectacular's schema view, generating the document once per version and language per process.

    The schema depends only on the code (``serve_public``: not on who asks), so a process keeps what it
    built until it restarts with new code."""

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, _language())
        schema = _built.get(key)
        if schema is None:
            with _build_lock:
                schema = _built.get(key)
                if schema is None:
                    generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
                    schema = generator.get_schema(request=request, public=self.serve_public)
                    _built[key] = schema
        return Response(
            data=schema,
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )


def _language() -> str:
    """The settings language the schema is written in: ``?lang=`` with a language we don't have is the
    default one (so no caller can make the view build a fresh document per made-up language)."""
    try:
        return translation.get_supported_language_variant(translation.get_language() or "")
    except LookupError:
        return settings.LANGUAGE_CODE


def forget_built_schemas() -> None:
    """For tests that change what the schema says."""
    _built.clear()


IDEMPOTENCY_PARAMETER_NAME = "IdempotencyKey"


def share_idempotency_parameter(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Declare the Idempotency-Key header once, in ``components.parameters``, and refer to it from every operation."""
    shared: dict[str, Any] | None = None
    reference = {"$ref": f"#/components/parameters/{IDEMPOTENCY_PARAMETER_NAME}"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            parameters = operation.get("parameters", [])
            for index, parameter in enumerate(parameters):
                if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_HEADER:
                    shared = shared or parameter
                    parameters[index] = reference
    if shared is not None:
        result.setdefault("components", {}).setdefault("parameters", {})[IDEMPOTENCY_PARAMETER_NAME] = shared
    return result
