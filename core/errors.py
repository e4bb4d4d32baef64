"""The root of greenledger's domain errors.

Every refusal a service can make is a ``DomainError`` subclass with a stable ``code`` and an HTTP
``status``; the API renders them in one place (``config.api.exception_handler``) as
``{"error": {"code", "message", "details"}}``. Management commands print the same code and message.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django.utils.translation import gettext_lazy


def translatable(text: str) -> str:
    """A message marked for translation and translated when it is shown, in the language of the request that
    renders it (a lazy string, typed as the text it becomes). Error modules import it as ``_``."""
    return cast(str, gettext_lazy(text))


_ = translatable


class DomainError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 409
    default_message: ClassVar[str] = _("The request was refused.")
    #: What the caller should do about it (docs/errors.md); None: what its status class says (``REMEDIES``).
    remedy: ClassVar[str | None] = None

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(DomainError):
    code = "invalid"
    status = 400
    default_message = _("The request is malformed or invalid.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class Forbidden(DomainError):
    code = "permission_denied"
    status = 403
    default_message = _("You do not have permission to perform this action.")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = _("The request conflicts with the current state.")


class MissingAuditEvent(RuntimeError):
    """A service changed state without recording an audit event: a programming error, never shown."""


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    default_message = _("Quantities are whole positive numbers.")
    remedy = "Send the quantity as a JSON integer of tonnes, from 1 to 10^12, without quotes."


# Refusals the HTTP layer makes before any service runs (config.api renders them with these codes); listed
# here so that the catalogue, docs/errors.md and the schema name every code a client can meet.
class NotAuthenticated(DomainError):
    code = "not_authenticated"
    status = 401
    default_message = _("Authentication credentials were not provided.")
    remedy = "Send 'Authorization: Token gl_...' with an API token (manage.py create_token, or the admin)."


class AuthenticationFailed(DomainError):
    code = "authentication_failed"
    status = 401
    default_message = _("Invalid, expired or revoked token.")
    remedy = (
        "Check the header reads 'Authorization: Token <token>' and that the token is live (not revoked or "
        "expired); ask for a new one if it is."
    )


class MalformedRequest(InvalidInput):
    code = "malformed_request"
    default_message = _("The request is malformed.")
    remedy = (
        "Send well-formed JSON (no duplicate keys, no NaN) and a valid Idempotency-Key (1-128 printable characters)."
    )


class MethodNotAllowed(DomainError):
    code = "method_not_allowed"
    status = 405
    default_message = _("This endpoint does not take that method.")
    remedy = "Use a method the endpoint lists in its Allow header (see /api/docs/)."


class NotAcceptable(DomainError):
    code = "not_acceptable"
    status = 406
    default_message = _("The API can't answer in the format asked for.")
    remedy = "Ask for application/json (or text/csv where an endpoint offers it)."


class RequestTooLarge(DomainError):
    code = "request_too_large"
    status = 413
    default_message = _("The request body is larger than this API accepts.")
    remedy = "Send less in one request (split a batch), under details.max_bytes."


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    status = 415
    default_message = _("The API takes JSON bodies.")
    remedy = "Send the body as JSON with 'Content-Type: application/json' (curl: -H 'Content-Type: application/json')."


class Throttled(DomainError):
    code = "throttled"
    status = 429
    default_message = _("Too many requests.")
    remedy = "Wait the seconds the Retry-After header (and details.retry_after_seconds) says, then retry."


class ServerError(DomainError):
    code = "server_error"
    status = 500
    default_message = _("An unexpected error occurred; it has been logged.")
    remedy = "Retry with the same Idempotency-Key (it is safe); report it with the time if it persists."


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    status = 503
    default_message = _("The service is briefly unavailable; please retry shortly.")
    remedy = "Retry after the Retry-After header's seconds, with the same Idempotency-Key."


#: What a caller should do, by status, for a code that says nothing more itself.
REMEDIES: dict[int, str] = {
    400: "Correct the request as the message and details say (details names the field), then send it again.",
    401: "Send a valid API token: 'Authorization: Token gl_...'.",
    403: "Act as a user or token of a participant and role allowed to do this: the message says who may.",
    404: "Check the number or id; what belongs to another participant also answers 404.",
    409: (
        "The ledger's state or a market rule refuses it now: read the object, rules or balance, change the "
        "request (or wait), and send it with a new Idempotency-Key."
    ),
}


def remedy_of(cls: type[DomainError]) -> str:
    return cls.remedy or REMEDIES.get(cls.status, "See the message and details.")


def catalogue() -> dict[str, type[DomainError]]:
    """Every error code the apps define, with its class (status, default message, docstring): the one list
    that docs and the schema read. Classes register by subclassing, so the modules that define them are
    imported first: each app names its error modules in its ``AppConfig.error_modules`` (the one registry;
    tests/docs/test_errors_doc.py holds it complete), and the catalogue is the same whatever was imported
    before it."""
    from importlib import import_module

    from django.apps import apps

    for config in apps.get_app_configs():
        for module in getattr(config, "error_modules", ()):
            import_module(module)
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return dict(sorted(found.items()))
