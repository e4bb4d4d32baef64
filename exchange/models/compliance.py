"""Compliance (履约): covered entities per year, verified emissions, allocation with true-up, surrender.

A ``ComplianceYear`` holds the rules of one year (deadline, pre-allocation share, CCER limit). Each
covered entity has one ``Obligation`` for the year; what it must surrender is its latest
``VerifiedEmission`` version. ``AllocationEntry`` rows record what the registry allocated for the year
(the pre-allocation, true-ups, refused take-backs) and ``Surrender`` rows what the entity surrendered.

Invariants: emission versions, allocation entries and surrenders are append-only (PostgreSQL refuses
UPDATE and DELETE); an obligation changes once, when the deadline job assesses it, and never after;
a closed year never changes again. The assessed figures satisfy ``shortfall = emissions - surrendered``
and ``penalty = shortfall x price x 5 .. 10`` in the database's own CHECK constraints.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.assets import Asset
from exchange.models.ledger import Account, Transaction

PENALTY_MIN_MULTIPLE = 5
PENALTY_MAX_MULTIPLE = 10
BASIS_POINTS = 10_000


class ComplianceYear(models.Model):
    year = models.PositiveSmallIntegerField(primary_key=True)
    deadline = models.DateField(
        help_text=_("Last day to surrender for the year (default: 31 December of the next year).")
    )
    preallocation_bp = models.PositiveIntegerField(
        default=7000,
        help_text=_("Pre-allocation: this share of the previous year's verified emissions, basis points."),
    )
    ccer_limit_bp = models.PositiveIntegerField(
        default=500, help_text=_("CCER may cover at most this share of an obligation, basis points (500 = 5%).")
    )
    closed_at = models.DateTimeField(null=True, blank=True, help_text=_("When the deadline job assessed the year."))
    market = models.CharField(
        max_length=16,
        default="CN-ETS",
        help_text=_("The market whose official monthly price sets the year's penalties."),
    )
    emissions_due = models.DateField(
        null=True,
        blank=True,
        help_text=_(
            "From the day after this date the authority may determine, conservatively, the emissions of an "
            "entity that has none verified (default: 30 September of the next year)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-year"]
        constraints = [
            models.CheckConstraint(condition=Q(year__gte=2000, year__lte=2100), name="compliance_year_range"),
            models.CheckConstraint(
                condition=Q(preallocation_bp__lte=BASIS_POINTS, ccer_limit_bp__lte=BASIS_POINTS),
                name="compliance_year_shares_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"compliance year {self.year}"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class ObligationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    COMPLETE = "complete", _("Complete")
    SHORT = "short", _("Short")
    UNVERIFIED = "unverified", _("No verified emissions at the deadline")
    LATE_COMPLETE = "late_complete", _("Completed after the deadline")


class Obligation(models.Model):
    """A covered entity's obligation for a year; assessed once, after the deadline."""

    year = models.ForeignKey(ComplianceYear, on_delete=models.PROTECT, related_name="obligations")
    entity = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="obligations")
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", help_text=_("Where the year's allocations go.")
    )
    status = models.CharField(max_length=16, choices=ObligationStatus.choices, default=ObligationStatus.OPEN)
    assessed_emissions = models.BigIntegerField(null=True, blank=True)
    assessed_surrendered = models.BigIntegerField(null=True, blank=True)
    shortfall = models.BigIntegerField(null=True, blank=True, help_text=_("Tonnes not surrendered by the deadline."))
    price_fen = models.BigIntegerField(
        null=True,
        blank=True,
        help_text=_("Average trading price of the month before the deadline (fen per tonne)."),
    )
    penalty_min_fen = models.BigIntegerField(null=True, blank=True)
    penalty_max_fen = models.BigIntegerField(null=True, blank=True)
    assessed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a short obligation was completed by a late surrender.")
    )
    sector = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text=_(
            "The entity's sector for the year (power, steel, cement, aluminium...): picks its allocation rule."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-year_id", "entity_id"]
        constraints = [
            models.UniqueConstraint(fields=["year", "entity"], name="obligation_one_per_entity_and_year"),
            models.CheckConstraint(
                condition=Q(
                    status=ObligationStatus.OPEN,
                    assessed_at__isnull=True,
                    assessed_emissions__isnull=True,
                    assessed_surrendered__isnull=True,
                    shortfall__isnull=True,
                    price_fen__isnull=True,
                )
                | Q(
                    status=ObligationStatus.UNVERIFIED,
                    assessed_at__isnull=False,
                    assessed_emissions__isnull=True,
                    assessed_surrendered__gte=0,
                    shortfall__isnull=True,
                    price_fen__isnull=True,
                )
                | Q(
                    status=ObligationStatus.COMPLETE,
                    assessed_at__isnull=False,
                    assessed_emissions__gte=0,
                    assessed_surrendered__gte=F("assessed_emissions"),
                    shortfall=0,
                )
                | Q(
                    status__in=[ObligationStatus.SHORT, ObligationStatus.LATE_COMPLETE],
                    assessed_at__isnull=False,
                    assessed_surrendered__gte=0,
                    shortfall__gt=0,
                    shortfall=F("assessed_emissions") - F("assessed_surrendered"),
                ),
                name="obligation_assessment_consistent",
            ),
            models.CheckConstraint(
                condition=Q(status=ObligationStatus.LATE_COMPLETE, completed_at__isnull=False)
                | (~Q(status=ObligationStatus.LATE_COMPLETE) & Q(completed_at__isnull=True)),
                name="obligation_completed_late_iff_dated",
            ),
            models.CheckConstraint(
                condition=Q(price_fen__isnull=True, penalty_min_fen__isnull=True, penalty_max_fen__isnull=True)
                | Q(
                    price_fen__gt=0,
                    penalty_min_fen=F("shortfall") * F("price_fen") * PENALTY_MIN_MULTIPLE,
                    penalty_max_fen=F("shortfall") * F("price_fen") * PENALTY_MAX_MULTIPLE,
                ),
                name="obligation_penalty_is_5_to_10_times_price",
            ),
        ]
        indexes = [models.Index(fields=["year", "status"], name="obligation_year_status_idx")]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.year_id} ({self.status})"


class VerifiedEmission(models.Model):
    """One version of an entity's verified emissions for a year. A correction is a new version."""

    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="emissions")
    version = models.PositiveIntegerField()
    quantity = models.BigIntegerField(help_text=_("Verified emissions of the year, tCO2e."))
    report_reference = models.CharField(max_length=100, blank=True, help_text=_("The verification report number."))
    note = models.CharField(max_length=500, blank=True, help_text=_("Why a correction was made."))
    conservative = models.BooleanField(
        default=False,
        help_text=_("Determined by the authority conservatively, the entity having no verified emissions."),
    )
    recorded_by = models.ForeignKey(Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["obligation", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["obligation", "version"], name="emission_one_per_version"),
            models.CheckConstraint(condition=Q(version__gte=1, quantity__gte=0), name="emission_values_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.obligation_id} v{self.version}: {self.quantity} t"


class AllocationKind(models.TextChoices):
    PRE_ALLOCATION = "pre_allocation", _("Pre-allocation")
    TRUE_UP = "true_up", _("True-up")


class AllocationOutcome(models.TextChoices):
    APPLIED = "applied", _("Applied")
    REFUSED = "refused", _("Refused (take-back units no longer available)")


class AllocationEntry(models.Model):
    """What the registry allocated to an obligation: issued (+), taken back (-), or a refused take-back."""

    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="allocations")
    kind = models.CharField(max_length=16, choices=AllocationKind.choices)
    outcome = models.CharField(max_length=16, choices=AllocationOutcome.choices)
    basis = models.BigIntegerField(
        help_text=_("Pre-allocation: the previous year's verified emissions; true-up: the approved allocation.")
    )
    allocated_before = models.BigIntegerField()
    target = models.BigIntegerField(help_text=_("The year's allocation after this entry, when applied."))
    quantity = models.BigIntegerField(help_text=_("Units moved: + issued, - taken back; 0 when nothing moved."))
    available = models.BigIntegerField(
        null=True, blank=True, help_text=_("Refused take-back: what the account still had available.")
    )
    shortfall = models.BigIntegerField(default=0, help_text=_("Refused take-back: units the entity no longer holds."))
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    rule = models.ForeignKey(
        "exchange.AllocationRule",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The allocation rule version the amount was computed by."),
    )
    computed = models.BigIntegerField(null=True, blank=True, help_text=_("What the rule gave before any deduction, t."))
    deducted = models.BigIntegerField(
        default=0, help_text=_("Tonnes deducted for the previous year's unsurrendered shortfall.")
    )
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["obligation", "id"]
        verbose_name_plural = _("allocation entries")
        constraints = [
            models.UniqueConstraint(
                fields=["obligation"],
                condition=Q(kind=AllocationKind.PRE_ALLOCATION),
                name="allocation_one_pre_allocation",
            ),
            models.CheckConstraint(
                condition=Q(allocated_before__gte=0, target__gte=0, basis__gte=0),
                name="allocation_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    outcome=AllocationOutcome.APPLIED,
                    shortfall=0,
                    available__isnull=True,
                    quantity=F("target") - F("allocated_before"),
                )
                | Q(
                    outcome=AllocationOutcome.REFUSED,
                    quantity=0,
                    shortfall__gt=0,
                    available__gte=0,
                    target__lt=F("allocated_before"),
                ),
                name="allocation_applied_or_refused",
            ),
            models.CheckConstraint(
                condition=Q(quantity=0, transaction__isnull=True) | (~Q(quantity=0) & Q(transaction__isnull=False)),
                name="allocation_moves_with_a_transaction",
            ),
            models.CheckConstraint(
                condition=Q(deducted__gte=0) & (Q(computed__isnull=True) | Q(computed__gte=0)),
                name="allocation_deduction_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity:+d} for obligation {self.obligation_id} ({self.outcome})"


class Surrender(models.Model):
    """Units surrendered for an obligation: gone for good to the surrender sink, in one transaction."""

    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="surrenders")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="surrenders")
    transaction = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="surrender")
    quantity = models.BigIntegerField(help_text=_("All items, tonnes."))
    ccer_quantity = models.BigIntegerField(help_text=_("The CCER items, tonnes."))
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0, ccer_quantity__gte=0, ccer_quantity__lte=F("quantity")),
                name="surrender_quantities_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"surrender {self.pk}: {self.quantity} t for obligation {self.obligation_id}"


class SurrenderItem(models.Model):
    surrender = models.ForeignKey(Surrender, on_delete=models.PROTECT, related_name="items")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()

    class Meta:
        ordering = ["surrender", "id"]
        constraints = [
            models.UniqueConstraint(fields=["surrender", "asset"], name="surrender_item_one_per_asset"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="surrender_item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} t of {self.asset_id}"
