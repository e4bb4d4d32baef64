"""OpenAPI post-processing: every operation documents the error body and the statuses it can answer, and
every keyed POST refers to the one ``Idempotency-Key`` header parameter (``components.parameters``)."""

from __future__ import annotations

from typing import Any

from config.api import IDEMPOTENCY_HEADER

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


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
    return result


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
