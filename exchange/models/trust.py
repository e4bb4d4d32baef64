"""Trusted accounts and pending transfers: a stolen login can't empty an account at once.

Each participant keeps a list of trusted destination accounts. Adding one takes two admins of the
participant and becomes effective only after a delay. A transfer to an account that is neither the
participant's own nor trusted waits as a ``PendingTransfer``: its units are held at once, the sender sees
and may cancel it, and a scheduled job carries it out when the delay has passed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction


class TrustStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed (waiting for a second admin)")
    APPROVED = "approved", _("Approved")
    REMOVED = "removed", _("Removed")


class TrustedAccount(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="trusted_accounts")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="trusted_by")
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=TrustStatus.choices, default=TrustStatus.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    effective_at = models.DateTimeField(null=True, blank=True, help_text=_("Transfers to it are immediate from then."))
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "account"],
                condition=~models.Q(status=TrustStatus.REMOVED),
                name="trusted_account_once",
            ),
            models.CheckConstraint(
                condition=~models.Q(approved_by=models.F("proposed_by")), name="trusted_account_two_admins"
            ),
            models.CheckConstraint(
                condition=models.Q(status=TrustStatus.PROPOSED, approved_by__isnull=True, effective_at__isnull=True)
                | ~models.Q(status=TrustStatus.PROPOSED),
                name="trusted_account_proposed_unapproved",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} trusts {self.account_id} ({self.status})"


class PendingStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    EXECUTED = "executed", _("Executed")
    CANCELLED = "cancelled", _("Cancelled")


class PendingTransfer(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="pending_transfers")
    source = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()
    memo = models.CharField(max_length=500, blank=True)
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="pending_transfer")
    # No longer written: keys live in IdempotentRequest. The column stays only while greenledger_transfer
    # (migration 0019) still names it; it goes with that function's rewrite.
    idempotency_key = models.CharField(max_length=160, null=True, blank=True, editable=False)  # noqa: DJ001
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField()
    execute_after = models.DateTimeField()
    status = models.CharField(max_length=16, choices=PendingStatus.choices, default=PendingStatus.PENDING)
    ended_at = models.DateTimeField(null=True, blank=True)
    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="pending_transfer"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="pending_transfer_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(status=PendingStatus.EXECUTED, transaction__isnull=False)
                | ~models.Q(status=PendingStatus.EXECUTED),
                name="pending_transfer_executed_has_transaction",
            ),
        ]
        indexes = [
            models.Index(fields=["execute_after"], name="pending_due_idx", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"pending transfer {self.pk}: {self.quantity} {self.asset_id} ({self.status})"
