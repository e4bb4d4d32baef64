"""Serial numbers: who holds which units, as ranges.

``SerialBlock(asset, first, last, account, state, hold)`` covers the inclusive range ``first..last``.
Blocks of an asset never overlap (a PostgreSQL exclusion constraint over ``int8range`` proves it) and
together cover every serial ever issued. Moving part of a block splits it; adjacent blocks of one
holder, state and hold are merged. ``SerialMovement`` records every range a transaction moved, so any
serial's history can be read back. Blocks change only through ``exchange.services.ledger``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction


class BlockState(models.TextChoices):
    AVAILABLE = "available", _("Available")
    HELD = "held", _("Held")
    FROZEN = "frozen", _("Frozen by a court")
    RETIRED = "retired", _("Retired")
    CANCELLED = "cancelled", _("Cancelled")
    SURRENDERED = "surrendered", _("Surrendered")


class SerialBlock(models.Model):
    # The foreign keys are indexed by the composite indexes below, not one by one.
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="serial_blocks", db_index=False)
    first = models.BigIntegerField()
    last = models.BigIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="serial_blocks", db_index=False)
    state = models.CharField(max_length=16, choices=BlockState.choices, default=BlockState.AVAILABLE)
    hold = models.ForeignKey(
        Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="blocks", db_index=False
    )  # block_hold_idx, partial: only held and frozen blocks have a hold

    class Meta:
        ordering = ["asset", "first"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(first__gte=1, last__gte=models.F("first")), name="block_range_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=[BlockState.HELD, BlockState.FROZEN], hold__isnull=False)
                | (~models.Q(state__in=[BlockState.HELD, BlockState.FROZEN]) & models.Q(hold__isnull=True)),
                name="block_reserved_iff_hold",
            ),
            models.UniqueConstraint(fields=["asset", "first"], name="block_asset_first_unique"),
        ]
        indexes = [
            models.Index(fields=["account", "asset", "state", "first"], name="block_holder_idx"),
            models.Index(fields=["asset", "last"], name="block_asset_last_idx"),
            models.Index(fields=["hold"], name="block_hold_idx", condition=models.Q(hold__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id}:{self.first}-{self.last} @{self.account_id} {self.state}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class SerialMovement(models.Model):
    """A range of serials a transaction moved from one account to another. Immutable."""

    # The references are checked once per INSERT statement by a trigger, not per row by foreign keys
    # (greenledger_movement_references, migration 0081; see docs/architecture.md, The ledger).
    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, related_name="serial_movements", db_constraint=False
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    first = models.BigIntegerField()
    last = models.BigIntegerField()
    source = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    destination = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    state = models.CharField(max_length=16, choices=BlockState.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(first__gte=1, last__gte=models.F("first")), name="movement_range_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["asset", "first"], name="movement_asset_first_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.transaction_id} {self.asset_id}:{self.first}-{self.last}"
