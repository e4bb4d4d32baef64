"""Four eyes: issuance and allocation above a threshold wait for a second registry user's approval.

An ``ApprovalRequest`` records the operation and its parameters as requested; approving it runs the
operation as then requested, in the approver's transaction, and records what it made.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant


class ApprovalOperation(models.TextChoices):
    CCER_ISSUE = "ccer.issue", _("CCER issuance")
    CEA_ALLOCATE = "cea.allocate", _("CEA allocation")
    PREALLOCATION = "compliance.preallocation", _("Compliance pre-allocation")
    TRUE_UP = "compliance.true_up", _("Compliance true-up")
    NON_TRADE_TRANSFER = "transfer.non_trade", _("Non-trade transfer")
    FINAL_ALLOCATION = "compliance.final_allocation", _("Compliance final allocation")
    PLEDGE_REGISTER = "pledge.register", _("Pledge registration")
    CCER_CLAIM_ISSUE = "ccer.claim_issue", _("CCER issuance of a reduction claim")
    PLEDGE_AMENDMENT_REGISTER = "pledge.amendment_register", _("Registration of a pledge amendment")


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved and carried out")
    REJECTED = "rejected", _("Rejected")


class ApprovalRequest(models.Model):
    operation = models.CharField(max_length=32, choices=ApprovalOperation.choices)
    params = models.JSONField(help_text=_("The operation's parameters as requested (codes, numbers, dates)."))
    quantity = models.BigIntegerField(help_text=_("Tonnes the operation creates or moves."))
    summary = models.CharField(max_length=300)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    result = models.CharField(max_length=100, blank=True, help_text=_("What approving made, e.g. transaction:42."))

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="approval_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(status=ApprovalStatus.PENDING, decided_by__isnull=True)
                | (~models.Q(status=ApprovalStatus.PENDING) & models.Q(decided_by__isnull=False)),
                name="approval_decided_iff_not_pending",
            ),
            models.CheckConstraint(condition=~models.Q(decided_by=models.F("requested_by")), name="approval_four_eyes"),
        ]
        indexes = [models.Index(fields=["status", "-id"], name="approval_status_idx")]

    def __str__(self) -> str:
        return f"approval {self.pk}: {self.summary} ({self.status})"
