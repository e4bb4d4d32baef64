"""Judicial freezes and seizures (司法冻结 / 司法扣划) of units in a holding account.

A court orders the registry to freeze exact serial blocks, or a quantity, of an account. The units are
reserved by a ``Hold`` of kind ``judicial_freeze`` whose serial blocks are in state ``frozen``: no trade,
transfer, pledge, surrender or retirement takes them, because every one of those takes available blocks
only. The freeze ends once: released (unfrozen by a later order) or seized (the units move to the account
the seizure order names, through the one posting path). The database ties a frozen block to a freeze's
hold (``Hold.block_state`` and the foreign key of migration 0101).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction

SHA256_REGEX = r"^[0-9a-f]{64}$"


class FreezeStatus(models.TextChoices):
    ACTIVE = "active", _("Frozen")
    RELEASED = "released", _("Released (unfrozen)")
    SEIZED = "seized", _("Seized (moved to the account the order names)")


class JudicialFreeze(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="judicial_freezes")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField(verbose_name=_("quantity"))
    first_serial = models.BigIntegerField(null=True, blank=True, verbose_name=_("first serial"))
    last_serial = models.BigIntegerField(null=True, blank=True, verbose_name=_("last serial"))
    court = models.CharField(max_length=200, verbose_name=_("court"))
    document_number = models.CharField(
        max_length=100, verbose_name=_("document number"), help_text=_("The court's ruling or notice number.")
    )
    document_sha256 = models.CharField(
        max_length=64, verbose_name=_("document SHA-256"), help_text=_("SHA-256 of the order's document, hex.")
    )
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="judicial_freeze")
    status = models.CharField(max_length=16, choices=FreezeStatus.choices, default=FreezeStatus.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField()
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    end_document_number = models.CharField(max_length=100, blank=True, verbose_name=_("release or seizure order"))
    end_document_sha256 = models.CharField(max_length=64, blank=True)
    seized_to = models.ForeignKey(Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="judicial_seizure"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("judicial freeze")
        verbose_name_plural = _("judicial freezes")
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="freeze_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(first_serial__isnull=True, last_serial__isnull=True)
                | models.Q(
                    first_serial__gte=1,
                    last_serial=models.F("first_serial") + models.F("quantity") - 1,
                ),
                name="freeze_serials_match_quantity",
            ),
            models.CheckConstraint(condition=models.Q(document_sha256__regex=SHA256_REGEX), name="freeze_doc_sha256"),
            models.CheckConstraint(
                condition=models.Q(status=FreezeStatus.ACTIVE, ended_at__isnull=True)
                | (~models.Q(status=FreezeStatus.ACTIVE) & models.Q(ended_at__isnull=False)),
                name="freeze_ended_iff_not_active",
            ),
            models.CheckConstraint(
                condition=models.Q(status=FreezeStatus.SEIZED, seized_to__isnull=False, transaction__isnull=False)
                | (~models.Q(status=FreezeStatus.SEIZED) & models.Q(seized_to__isnull=True, transaction__isnull=True)),
                name="freeze_seized_iff_moved",
            ),
            models.UniqueConstraint(
                fields=["court", "document_number", "account", "asset"], name="freeze_one_per_order_and_holding"
            ),
        ]

    def __str__(self) -> str:
        return f"freeze {self.pk}: {self.quantity} t of {self.asset_id} in {self.account_id} ({self.status})"
