"""Writes about participants, memberships and API tokens. Each records an audit event."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError
from django.utils import timezone
from django.utils.translation import gettext

from accounts import hooks
from accounts.actors import Actor
from accounts.authentication import TOKEN_PREFIX, split_token, token_digest
from accounts.errors import DuplicateParticipant, InvalidUscc, RoleForbidden, WrongParticipantKind
from accounts.models import (
    HOLDER_KINDS,
    ApiToken,
    Membership,
    Participant,
    ParticipantKind,
    ParticipantStatus,
    Role,
)
from accounts.validators import invalid_uscc_message, uscc_problem
from core.errors import InvalidInput, NotFound
from core.service import audit_record, mark_unchanged, service


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)


@service
def participant_create(
    *, actor: Actor, name: str, kind: str, uscc: str, email: str = "", open_account: bool = True
) -> Participant:
    """Register a participant (registry only). Holder kinds get a first holding account."""
    _require_registry(actor)
    if kind not in ParticipantKind.values:
        raise InvalidInput(gettext("Unknown participant kind %(kind)r.") % {"kind": kind}, details={"kind": kind})
    uscc = uscc.strip().upper()
    problem = uscc_problem(uscc)
    if problem:
        raise InvalidUscc(invalid_uscc_message(problem), details={"uscc": uscc})
    if not name.strip():
        raise InvalidInput(gettext("A participant needs a name."))
    if Participant.objects.filter(uscc=uscc).exists():
        raise DuplicateParticipant(details={"uscc": uscc})
    try:
        participant = Participant.objects.create(name=name.strip(), kind=kind, uscc=uscc, email=email)
    except IntegrityError:
        raise DuplicateParticipant(details={"uscc": uscc}) from None
    audit_record(
        actor=actor,
        action="participant.create",
        obj=participant,
        payload={"name": participant.name, "kind": kind, "uscc": uscc, "email": email},
    )
    if open_account and kind in HOLDER_KINDS:
        hooks.account_open(actor=actor, participant=participant, name=f"{participant.name} main account")
    return participant


def _set_status(actor: Actor, participant: Participant, status: str, reason: str) -> Participant:
    _require_registry(actor)
    if participant.kind == ParticipantKind.REGISTRY and status == ParticipantStatus.SUSPENDED:
        raise WrongParticipantKind(gettext("The registry can't suspend itself."))
    previous = participant.status
    Participant.objects.filter(pk=participant.pk).update(status=status)
    participant.status = status
    audit_record(
        actor=actor,
        action=f"participant.{'suspend' if status == ParticipantStatus.SUSPENDED else 'reactivate'}",
        obj=participant,
        payload={"from": previous, "to": status, "reason": reason},
    )
    return participant


@service
def participant_suspend(*, actor: Actor, participant: Participant, reason: str) -> Participant:
    """Suspend a participant: its people can still read, but nothing of it moves."""
    return _set_status(actor, participant, ParticipantStatus.SUSPENDED, reason)


@service
def participant_reactivate(*, actor: Actor, participant: Participant, reason: str) -> Participant:
    return _set_status(actor, participant, ParticipantStatus.ACTIVE, reason)


def _require_membership_manager(actor: Actor, participant_id: int, not_yours: NotFound) -> None:
    """Memberships are managed by an admin: of the registry for anyone, of a participant for its own.

    Every kind passes the same role check (a registry viewer or trader can't make itself an admin)."""
    if actor.is_system:
        return
    actor.require_can_act()
    actor.require_role(Role.ADMIN)
    if not actor.is_kind(ParticipantKind.REGISTRY) and not actor.owns(participant_id):
        raise not_yours


@service
def membership_create(*, actor: Actor, user: User, participant: Participant, role: str) -> Membership:
    """Let a user act for a participant: the registry for anyone, a participant's admin for their own."""
    _require_membership_manager(actor, participant.pk, NotFound(gettext("No such participant.")))
    if role not in Role.values:
        raise InvalidInput(gettext("Unknown role %(role)r.") % {"role": role}, details={"role": role})
    if Membership.objects.filter(user=user).exists():
        raise InvalidInput(gettext("This user already acts for a participant."), details={"user": user.pk})
    membership = Membership.objects.create(user=user, participant=participant, role=role)
    audit_record(
        actor=actor,
        action="membership.create",
        obj=membership,
        payload={"user": user.pk, "username": user.get_username(), "participant": participant.pk, "role": role},
    )
    return membership


def _may_manage_tokens_of(actor: Actor, user: User) -> bool:
    if actor.is_system or actor.user_id == user.pk:
        return True
    membership = Membership.objects.filter(user=user).first()
    return bool(membership and actor.owns(membership.participant_id) and actor.role == Role.ADMIN)


@service
def api_token_create(
    *,
    actor: Actor,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    token_text: str | None = None,
) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; return it and the token text, which is never stored or shown again.

    ``token_text`` sets the token instead of drawing one (the demo market's published token only).
    """
    if not _may_manage_tokens_of(actor, user):
        raise RoleForbidden(gettext("Only the user or an admin of their participant can create their tokens."))
    if not Membership.objects.filter(user=user).exists():
        raise InvalidInput(gettext("A token's user must act for a participant."), details={"user": user.pk})
    if token_text is not None:
        prefix = split_token(token_text) or ""
        if not prefix or ApiToken.objects.filter(prefix=prefix).exists():
            raise InvalidInput(gettext("token_text must look like gl_<prefix>_<secret> with an unused prefix."))
        plaintext = token_text
    else:
        prefix = secrets.token_hex(6)
        plaintext = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name or "api", prefix=prefix, digest=token_digest(plaintext), expires_at=expires_at
    )
    audit_record(
        actor=actor,
        action="api_token.create",
        obj=token,
        payload={"user": user.pk, "name": token.name, "prefix": prefix, "expires_at": expires_at},
    )
    return token, plaintext


def may_revoke_token_of(actor: Actor, user: User) -> bool:
    """Who may revoke a user's tokens: the user, an admin of their participant, and an admin of the
    registry for anyone's (a leaked token is stopped by the registry without waiting for its owner)."""
    if _may_manage_tokens_of(actor, user):
        return True
    return actor.is_kind(ParticipantKind.REGISTRY) and actor.role == Role.ADMIN


@service
def api_token_revoke(*, actor: Actor, token: ApiToken, reason: str = "") -> ApiToken:
    """Revoke a token for good: it authenticates nothing from this moment. Revoking a revoked token changes
    nothing but is recorded too (who tried, and why)."""
    if not may_revoke_token_of(actor, token.user):
        raise RoleForbidden(
            gettext("Only the user, an admin of their participant or an admin of the registry can revoke their tokens.")
        )
    # No acting check beyond the role: revoking protects, so a suspended participant's admin may still do it.
    already = token.revoked_at is not None
    if not already:
        token.revoked_at = timezone.now()
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=token.revoked_at)
    audit_record(
        actor=actor,
        action="api_token.revoke",
        obj=token,
        payload={
            "prefix": token.prefix,
            "user": token.user_id,
            "reason": reason,
            "already_revoked": already,
        },
    )
    return token


@service
def participant_update(*, actor: Actor, participant: Participant, name: str, email: str) -> Participant:
    """Change a participant's name or notice address (registry only); kind and USCC never change."""
    _require_registry(actor)
    if not name.strip():
        raise InvalidInput(gettext("A participant needs a name."))
    changes = {
        field: [getattr(participant, field), value]
        for field, value in (("name", name.strip()), ("email", email.strip()))
        if getattr(participant, field) != value
    }
    if not changes:
        mark_unchanged()
        return participant
    Participant.objects.filter(pk=participant.pk).update(**{f: v[1] for f, v in changes.items()})
    for field, (_, new) in changes.items():
        setattr(participant, field, new)
    audit_record(actor=actor, action="participant.update", obj=participant, payload={"changes": changes})
    return participant


@service
def membership_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change what a member may do (the registry, or an admin of the same participant)."""
    _require_membership_manager(actor, membership.participant_id, NotFound(gettext("No such membership.")))
    if role not in Role.values:
        raise InvalidInput(gettext("Unknown role %(role)r.") % {"role": role}, details={"role": role})
    previous = membership.role
    Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    audit_record(actor=actor, action="membership.set_role", obj=membership, payload={"from": previous, "to": role})
    return membership
