"""Refusals about who is acting: each has a stable code (see core.errors)."""

from core.errors import DomainError, Forbidden, InvalidInput, NotFound
from core.errors import translatable as _


class ParticipantSuspended(Forbidden):
    code = "participant_suspended"
    default_message = _("The participant is suspended: it can read but not move anything.")
    remedy = "Ask the registry to reactivate the participant; meanwhile you can read."


class WrongParticipantKind(Forbidden):
    code = "wrong_participant_kind"
    default_message = _("This participant kind may not do this.")
    remedy = "Log in (or use a token) as staff of the participant kind the message names."


class RoleForbidden(Forbidden):
    code = "role_forbidden"
    default_message = _("Your role in the participant does not allow this.")
    remedy = "Ask your participant's admin for the trader or admin role."


class NoMembership(Forbidden):
    code = "no_membership"
    default_message = _("This user acts for no participant; ask an administrator for a membership.")
    remedy = "Ask an administrator to give the user a membership of a participant."


class ParticipantNotFound(NotFound):
    code = "participant_not_found"
    default_message = _("No such participant.")


class TokenNotFound(NotFound):
    code = "token_not_found"
    default_message = _("No such API token, or not yours to manage.")


class InvalidUscc(InvalidInput):
    code = "invalid_uscc"
    default_message = _("Invalid unified social credit code.")
    remedy = "Send the 18-character unified social credit code with its check character."


class DuplicateParticipant(DomainError):
    code = "duplicate_participant"
    status = 409
    default_message = _("A participant with this unified social credit code exists.")
