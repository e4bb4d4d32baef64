"""Ledger refusals. Each has a stable ``code``; the API renders them as the JSON error body."""

from core.errors import Conflict, DomainError, InvalidInput, NotFound


class LedgerError(DomainError):
    code = "ledger_error"
    status = 409


class InsufficientAvailable(LedgerError):
    code = "insufficient_available"
    default_message = "The account does not have enough available units."


class SameAccount(LedgerError):
    code = "same_account"
    default_message = "Source and destination are the same account."


class AssetNotTransferable(LedgerError):
    code = "asset_not_transferable"
    default_message = "This asset can't be transferred."


class InvalidState(LedgerError):
    code = "invalid_state"
    default_message = "The object is not in a state that allows this."


class RuleViolation(LedgerError):
    code = "rule_violation"
    default_message = "The request breaks a market rule."


class InvalidDestination(LedgerError):
    code = "invalid_destination"
    default_message = "Units can't be sent to that account."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = "This Idempotency-Key was used with a different request."


class UnknownAsset(InvalidInput):
    code = "unknown_asset"
    default_message = "No such asset."


class AccountNotFound(NotFound):
    code = "account_not_found"
    default_message = "No such account, or not yours."


class ProjectNotFound(NotFound):
    code = "project_not_found"
    default_message = "No such project."


class DuplicateObject(Conflict):
    code = "duplicate"
    default_message = "It exists already."


class CsvRejected(InvalidInput):
    code = "csv_rejected"
    default_message = "The file has bad rows; nothing of it was applied."


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
    default_message = "A request with this Idempotency-Key is still in progress; retry shortly for its answer."
    retry_after = 1


class DuplicateExternalReference(DuplicateObject):
    code = "duplicate_external_reference"
    default_message = "An issuance with this external reference exists already."


class RulebookNotFound(NotFound):
    """No rulebook of the instrument's market is in effect on that day (or the instrument has no market)."""

    code = "rulebook_not_found"
    default_message = "No market rulebook is in effect for this instrument on that day."
