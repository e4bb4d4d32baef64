"""Ledger refusals. Each has a stable ``code``; the API renders them as the JSON error body."""

from __future__ import annotations

from django.utils.translation import gettext

from core.errors import Conflict, DomainError, InvalidInput, NotFound, ServiceUnavailable
from core.errors import translatable as _


class LedgerError(DomainError):
    code = "ledger_error"
    status = 409


class InsufficientAvailable(LedgerError):
    code = "insufficient_available"
    default_message = _("The account does not have enough available units.")
    remedy = (
        "Read the account's holdings (GET /accounts/{number}/holdings): ask for at most what is available "
        "(held units are reserved for orders, pledges or pending transfers)."
    )


class SameAccount(LedgerError):
    code = "same_account"
    default_message = _("Source and destination are the same account.")
    remedy = "Send to another account; moving units within one account changes nothing."


class AssetNotTransferable(LedgerError):
    code = "asset_not_transferable"
    default_message = _("This asset can't be transferred.")


class InvalidState(LedgerError):
    code = "invalid_state"
    default_message = _("The object is not in a state that allows this.")


class RuleViolation(LedgerError):
    code = "rule_violation"
    default_message = _("The request breaks a market rule.")


class InvalidDestination(LedgerError):
    code = "invalid_destination"
    default_message = _("Units can't be sent to that account.")


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = _("This Idempotency-Key was used with a different request.")
    remedy = "Use a new Idempotency-Key for a new request; reuse a key only to retry the very same request."


class UnknownAsset(InvalidInput):
    code = "unknown_asset"
    default_message = _("No such asset.")
    remedy = "Use an asset code the registry lists (GET /assets), e.g. CEA-2024."


class AccountNotFound(NotFound):
    code = "account_not_found"
    default_message = _("No such account, or not yours.")
    remedy = "Check the account number (CN-100-000123); a source must be one of your own accounts."

    @classmethod
    def destination(cls, number: str) -> AccountNotFound:
        """A destination that is no holding account: any participant's account may receive, so "or not
        yours" would mislead; the caller should check the number."""
        return cls(
            gettext("No holding account %(number)s: check the destination's account number (like CN-100-000123).")
            % {"number": number},
            details={"account": number, "field": "destination"},
        )


class ProjectNotFound(NotFound):
    code = "project_not_found"
    default_message = _("No such project.")


class DuplicateObject(Conflict):
    code = "duplicate"
    default_message = _("It exists already.")


class CsvRejected(InvalidInput):
    code = "csv_rejected"
    default_message = _("The file has bad rows; nothing of it was applied.")
    remedy = "Fix the rows details lists (line, problem) and upload the whole file again."


__all__ = [
    "AccountNotFound",
    "AssetNotTransferable",
    "CsvRejected",
    "DuplicateObject",
    "IdempotencyConflict",
    "InsufficientAvailable",
    "InvalidDestination",
    "InvalidState",
    "LedgerError",
    "ProjectNotFound",
    "RuleViolation",
    "SameAccount",
    "UnknownAsset",
]


class RequestInProgress(Conflict):
    """A request with this Idempotency-Key is still running: retry after ``retry_after`` seconds for its answer."""

    code = "request_in_progress"
    default_message = _("A request with this Idempotency-Key is still in progress; retry shortly for its answer.")
    remedy = "Wait the Retry-After seconds and send the same request with the same key: you get its answer."
    retry_after = 1


class EngineUnavailable(ServiceUnavailable):
    """No matching engine owns the order's book now, or it did not acknowledge the order in time."""

    code = "engine_unavailable"
    default_message = _(
        "The matching engine for this instrument is not running; the order was not taken. Retry shortly."
    )
    remedy = (
        "Wait the Retry-After seconds and send the same request with the same Idempotency-Key: an order the engine"
        " did take answers as placed, one it did not is placed then."
    )
    retry_after = 1


class DuplicateExternalReference(DuplicateObject):
    code = "duplicate_external_reference"
    default_message = _("An issuance with this external reference exists already.")
    remedy = "The issuance exists already: read it instead of issuing again."


class RulebookNotFound(NotFound):
    """No rulebook of the instrument's market is in effect on that day (or the instrument has no market)."""

    code = "rulebook_not_found"
    default_message = _("No market rulebook is in effect for this instrument on that day.")
