"""The root of greenledger's domain errors.

Every refusal a service can make is a ``DomainError`` subclass with a stable ``code`` and an HTTP
``status``; the API renders them in one place (``config.api.exception_handler``) as
``{"error": {"code", "message", "details"}}``. Management commands print the same code and message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 409
    default_message: ClassVar[str] = "The request was refused."

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
    default_message = "The request is malformed or invalid."


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class Forbidden(DomainError):
    code = "permission_denied"
    status = 403
    default_message = "You do not have permission to perform this action."


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."


class MissingAuditEvent(RuntimeError):
    """A service changed state without recording an audit event: a programming error, never shown."""


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    default_message = "Quantities are whole positive numbers."


def catalogue() -> dict[str, type[DomainError]]:
    """Every error code the apps define, with its class (status, default message, docstring): the one list
    that docs and the schema read. Classes register by subclassing; import the apps' error modules (as
    Django's app loading does) before asking."""
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return dict(sorted(found.items()))
