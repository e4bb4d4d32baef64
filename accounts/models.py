"""Participants, the people who act for them, and the API tokens their programs use.

A user belongs to exactly one participant (``Membership``) and acts only for it. A suspended
participant can read but not move anything; that rule lives in ``accounts.actors.Actor``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.validators import validate_uscc


class ParticipantKind(models.TextChoices):
    REGISTRY = "registry", _("Registry operator")
    EXCHANGE = "exchange", _("Exchange operator")
    COMPLIANCE_ENTITY = "compliance_entity", _("Compliance entity")
    PROJECT_OWNER = "project_owner", _("Project owner")
    INVESTOR = "investor", _("Investor / institution")
    FINANCIAL_INSTITUTION = "financial_institution", _("Financial institution")
    VERIFIER = "verifier", _("Verifier")
    AUDITOR = "auditor", _("Auditor")


# Kinds whose staff see every participant's data.
OVERSEER_KINDS = frozenset({ParticipantKind.REGISTRY, ParticipantKind.EXCHANGE, ParticipantKind.AUDITOR})
# Kinds that hold units in accounts of their own.
HOLDER_KINDS = frozenset(
    {
        ParticipantKind.COMPLIANCE_ENTITY,
        ParticipantKind.PROJECT_OWNER,
        ParticipantKind.INVESTOR,
        ParticipantKind.FINANCIAL_INSTITUTION,
    }
)


class ParticipantStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")


class Participant(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=ParticipantKind.choices)
    uscc = models.CharField(_("unified social credit code"), max_length=18, unique=True, validators=[validate_uscc])
    status = models.CharField(max_length=16, choices=ParticipantStatus.choices, default=ParticipantStatus.ACTIVE)
    email = models.EmailField(blank=True, help_text=_("Where notices (margin calls, deadlines) are sent."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ParticipantKind.values), name="participant_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=ParticipantStatus.values), name="participant_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == ParticipantStatus.ACTIVE


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    TRADER = "trader", _("Trader")
    VIEWER = "viewer", _("Viewer")


# Roles that may move value for their participant.
ACTING_ROLES = frozenset({Role.ADMIN, Role.TRADER})


class Membership(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role} of {self.participant})"


class ApiToken(models.Model):
    """A machine client's credential. Only a SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text=_("Public part of the token, for lookup."))
    digest = models.CharField(max_length=64, help_text=_("SHA-256 of the whole token."))
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (gl_{self.prefix}_…)"
