"""Who is acting: a user for their participant, or the system (scheduled jobs).

Every service takes an ``Actor`` and asks it before changing anything. Views, admin actions,
management commands and tasks build one; the same checks hold whichever door a request came through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from accounts.errors import NoMembership, ParticipantSuspended, RoleForbidden, WrongParticipantKind
from accounts.models import ACTING_ROLES, OVERSEER_KINDS, Membership, ParticipantKind, ParticipantStatus, Role

if TYPE_CHECKING:
    from accounts.models import Participant


def _role_name(role: str | None) -> str:
    """A role as a refusal names it: its label in the reader's language, lower case."""
    return str(Role(role).label).lower() if role in Role.values else str(role)


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    participant_id: int | None
    participant_kind: str | None
    role: str | None
    participant_status: str | None
    system_name: str | None = None

    # --- construction -----------------------------------------------------------------------------
    @classmethod
    def for_user(cls, user: Any) -> Actor:
        """The actor for a logged-in or token user; refuses a user without a membership."""
        try:
            membership = user.membership
        except (Membership.DoesNotExist, AttributeError):
            raise NoMembership() from None
        participant = membership.participant
        return cls(
            user_id=user.pk,
            participant_id=participant.pk,
            participant_kind=participant.kind,
            role=membership.role,
            participant_status=participant.status,
        )

    @classmethod
    def for_membership(cls, membership: Membership) -> Actor:
        return cls.for_user(membership.user)

    @classmethod
    def system(cls, name: str) -> Actor:
        """A scheduled job or command acting on the platform's behalf (settlement, sealing, ...)."""
        return cls(None, None, None, None, None, system_name=name)

    # --- questions --------------------------------------------------------------------------------
    @property
    def is_system(self) -> bool:
        return self.system_name is not None

    @property
    def sees_everything(self) -> bool:
        return self.is_system or self.participant_kind in OVERSEER_KINDS

    def is_kind(self, *kinds: str) -> bool:
        return self.participant_kind in kinds

    def owns(self, participant_id: int | None) -> bool:
        return participant_id is not None and participant_id == self.participant_id

    @property
    def member_participant_id(self) -> int:
        """The participant a user acts for, where only a user can be acting (the system acts for none)."""
        if self.participant_id is None:
            raise RuntimeError(f"{self.label} acts for no participant")
        return self.participant_id

    @property
    def member_user_id(self) -> int:
        """The acting user, where only a user can be acting (the system is no user)."""
        if self.user_id is None:
            raise RuntimeError(f"{self.label} is no user")
        return self.user_id

    @property
    def label(self) -> str:
        if self.is_system:
            return f"system:{self.system_name}"
        return f"user:{self.user_id}@participant:{self.participant_id}"

    # --- requirements (raise a DomainError) ---------------------------------------------------------
    def require_can_act(self) -> None:
        """The participant is active and the user's role may move value."""
        if self.is_system:
            return
        if self.participant_status != ParticipantStatus.ACTIVE:
            raise ParticipantSuspended()
        if self.role not in ACTING_ROLES:
            raise RoleForbidden(_("The %(role)s role can read but not act.") % {"role": _role_name(self.role)})
        if self.participant_kind == ParticipantKind.AUDITOR:
            raise WrongParticipantKind(_("Auditors read everything and change nothing."))

    def require_kind(self, *kinds: str, allow_system: bool = True) -> None:
        if self.is_system and allow_system:
            return
        if self.participant_kind not in kinds:
            names = _(" or ").join(str(ParticipantKind(k).label).lower() for k in kinds)
            yours = str(ParticipantKind(self.participant_kind).label).lower() if self.participant_kind else "—"
            raise WrongParticipantKind(
                _(
                    "Only staff of the %(kinds)s may do this, and you act for the %(yours)s: "
                    "log in as a user of the %(kinds)s."
                )
                % {"kinds": names, "yours": yours},
                details={"allowed_kinds": list(kinds), "your_kind": self.participant_kind},
            )

    def require_role(self, *roles: str) -> None:
        if self.is_system:
            return
        if self.role not in roles:
            raise RoleForbidden(
                _("This needs the %(roles)s role.") % {"roles": _(" or ").join(_role_name(r) for r in roles)}
            )


def participant_of(actor: Actor) -> Participant | None:
    from accounts.models import Participant

    return None if actor.participant_id is None else Participant.objects.get(pk=actor.participant_id)
