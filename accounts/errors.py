"""Refusals about who is acting: each has a stable code (see core.errors)."""

from core.errors import DomainError, Forbidden, InvalidInput, NotFound


class ParticipantSuspended(Forbidden):
    code = "participant_suspended"
    default_message = "The participant is suspended: it can read but not move anything."


class WrongParticipantKind(Forbidden):
    code = "wrong_participant_kind"
    default_message = "This participant kind may not do this."


class RoleForbidden(Forbidden):
    code = "role_forbidden"
    default_message = "Your role in the participant does not allow this."


class NoMembership(Forbidden):
    code = "no_membership"
    default_message = "This user acts for no participant; ask an administrator for a membership."


class ParticipantNotFound(NotFound):
    code = "participant_not_found"
    default_message = "No such participant."


class TokenNotFound(NotFound):
    code = "token_not_found"
    default_message = "No such API token, or not yours to manage."


class InvalidUscc(InvalidInput):
    code = "invalid_uscc"
    default_message = "Invalid unified social credit code."


class DuplicateParticipant(DomainError):
    code = "duplicate_participant"
    status = 409
    default_message = "A participant with this unified social credit code exists."
