"""Non-trade transfers (非交易过户): units that change hands off the exchange for a legal reason.

In a market whose rulebook says ``participant_transfers = non_trade_only``, units go to another participant
only this way. The holder (or a court, heir or successor, through the registry) applies with a legal-basis
code and the supporting document's SHA-256; the units are held at once (a ``Hold`` of kind
``non_trade_transfer``, exact serial blocks). A first registry officer reviews it and files it for a second
officer's approval (``ApprovalRequest`` of operation ``transfer.non_trade``); the second approves (the
units move through the posting path) or rejects (the hold is released). Either officer may reject.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.approvals import ApprovalRequest
from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction

SHA256_REGEX = r"^[0-9a-f]{64}$"


class LegalBasis(models.TextChoices):
    JUDICIAL_RULING = "judicial_ruling", _("Judicial ruling or enforcement")
    MERGER_SPLIT = "merger_split", _("Merger or split of the holder")
    INHERITANCE = "inheritance", _("Inheritance")
    DISSOLUTION = "dissolution", _("Dissolution or bankruptcy of the holder")
    OTHER = "other", _("Other, as stated")


class NonTradeStatus(models.TextChoices):
    APPLIED = "applied", _("Applied; units held")
    REVIEWED = "reviewed", _("Reviewed; waiting for a second officer")
    APPROVED = "approved", _("Approved and carried out")
    REJECTED = "rejected", _("Rejected; units released")


class NonTradeTransfer(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices, verbose_name=_("legal basis"))
    legal_basis_text = models.CharField(max_length=500, blank=True, verbose_name=_("legal basis, stated"))
    document_sha256 = models.CharField(max_length=64, verbose_name=_("supporting document SHA-256"))
    memo = models.CharField(max_length=500, blank=True)
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="non_trade_transfer")
    status = models.CharField(max_length=16, choices=NonTradeStatus.choices, default=NonTradeStatus.APPLIED)
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    applied_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approval = models.OneToOneField(
        ApprovalRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="non_trade_transfer"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="non_trade_transfer"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("non-trade transfer")
        verbose_name_plural = _("non-trade transfers")
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="non_trade_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(document_sha256__regex=SHA256_REGEX), name="non_trade_doc_sha256"
            ),
            models.CheckConstraint(
                condition=~models.Q(legal_basis=LegalBasis.OTHER) | ~models.Q(legal_basis_text=""),
                name="non_trade_other_is_stated",
            ),
            models.CheckConstraint(
                condition=models.Q(status=NonTradeStatus.APPLIED, reviewed_by__isnull=True, decided_at__isnull=True)
                | models.Q(
                    status=NonTradeStatus.REVIEWED,
                    reviewed_by__isnull=False,
                    approval__isnull=False,
                    decided_at__isnull=True,
                )
                | models.Q(
                    status=NonTradeStatus.APPROVED,
                    reviewed_by__isnull=False,
                    decided_by__isnull=False,
                    decided_at__isnull=False,
                )
                | models.Q(status=NonTradeStatus.REJECTED, decided_by__isnull=False, decided_at__isnull=False),
                name="non_trade_steps_recorded",
            ),
            models.CheckConstraint(
                condition=models.Q(status=NonTradeStatus.APPROVED, transaction__isnull=False)
                | (~models.Q(status=NonTradeStatus.APPROVED) & models.Q(transaction__isnull=True)),
                name="non_trade_moved_iff_approved",
            ),
            # Four eyes: the officer who approves is not the one who reviewed.
            models.CheckConstraint(
                condition=~models.Q(status=NonTradeStatus.APPROVED) | ~models.Q(decided_by=models.F("reviewed_by")),
                name="non_trade_four_eyes",
            ),
            models.CheckConstraint(condition=~models.Q(source=models.F("destination")), name="non_trade_two_accounts"),
        ]

    def __str__(self) -> str:
        return f"non-trade transfer {self.pk}: {self.quantity} t ({self.status})"
