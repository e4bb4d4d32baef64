"""Holds: quantity reserved on an account for an open order, a pledge, a pending or non-trade transfer, or a
judicial freeze.

A hold is created once and ends once, like a two-phase pending transfer: posted (its units moved,
possibly in several settlements, until nothing remains), released back to available, or enforced.
For serialised assets the reserved units are exact serial blocks in state ``held``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from exchange.models.assets import Asset
from exchange.models.ledger import Account


class HoldKind(models.TextChoices):
    ORDER = "order", _("Open order")
    PLEDGE = "pledge", _("Pledge")
    PENDING_TRANSFER = "pending_transfer", _("Pending transfer")
    NON_TRADE_TRANSFER = "non_trade_transfer", _("Non-trade transfer under review")
    JUDICIAL_FREEZE = "judicial_freeze", _("Judicial freeze")


class HoldStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    POSTED = "posted", _("Posted")
    RELEASED = "released", _("Released")
    ENFORCED = "enforced", _("Enforced")


class Hold(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="holds")
    kind = models.CharField(max_length=32, choices=HoldKind.choices)
    reference = models.CharField(max_length=100, help_text=_("What the hold is for, e.g. order:42."))
    quantity = models.BigIntegerField(help_text=_("What was reserved when the hold was created."))
    remaining = models.BigIntegerField(help_text=_("What is still reserved; 0 once the hold has ended."))
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # The state its serial blocks are in: ``frozen`` for a judicial freeze, ``held`` for any other hold. A
    # foreign key from a block's (hold, state) to (id, block_state) lets the database refuse a frozen block
    # under any other hold, and a held one under a freeze (migration 0101).
    block_state = models.GeneratedField(
        expression=models.Case(
            models.When(kind="judicial_freeze", then=models.Value("frozen")),
            default=models.Value("held"),
        ),
        output_field=models.CharField(max_length=16),
        db_persist=True,
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0, remaining__gte=0, remaining__lte=models.F("quantity")),
                name="hold_remaining_within_quantity",
            ),
            models.CheckConstraint(
                condition=models.Q(status=HoldStatus.ACTIVE, ended_at__isnull=True, remaining__gt=0)
                | (~models.Q(status=HoldStatus.ACTIVE) & models.Q(ended_at__isnull=False, remaining=0)),
                name="hold_active_iff_open",
            ),
            models.UniqueConstraint(fields=["id", "block_state"], name="hold_id_block_state_unique"),
        ]
        indexes = [
            models.Index(fields=["account", "asset"], name="hold_active_idx", condition=models.Q(status="active")),
            models.Index(fields=["reference"], name="hold_reference_idx"),
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} {self.remaining}/{self.quantity} of {self.asset_id} ({self.status})"
