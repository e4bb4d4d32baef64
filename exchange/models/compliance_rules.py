"""The compliance rules that vary by year or market, held as data: allocation methods per sector, the
inputs of a benchmark allocation, carryover (banking) limits, the authority's official monthly prices, and
the deductions (等量核减) the registry decides.

Every rule row is a *version*: a change is a new row with the next ``version`` and an ``effective_from``
date; the rule in force on a day is the latest version effective on or before it. Rows are append-only
(PostgreSQL refuses UPDATE and DELETE), and each is written by a service that records its audit event.
Sources and defaults are stated in docs/compliance.md.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from exchange.models.compliance import BASIS_POINTS, AllocationEntry, Obligation

PPM = 1_000_000  # benchmarks and correction factors are stored in millionths


class AllocationStage(models.TextChoices):
    PRE_ALLOCATION = "pre_allocation", _("Pre-allocation")
    FINAL = "final", _("Final allocation (true-up)")


class AllocationMethod(models.TextChoices):
    BENCHMARK = "benchmark", _("Benchmark x output x correction factors")
    VERIFIED_EMISSIONS = "verified_emissions", _("Share of the year's verified emissions")
    PREVIOUS_SHARE = "previous_share", _("Share of the previous year's verified emissions")


class AllocationRule(models.Model):
    """How a sector's allocation for a compliance year is computed (one version of it)."""

    year = models.PositiveSmallIntegerField(help_text=_("The compliance year allocated."))
    sector = models.CharField(
        max_length=32, blank=True, help_text=_("The sector (power, steel, cement, aluminium); blank: any other.")
    )
    stage = models.CharField(max_length=16, choices=AllocationStage.choices)
    method = models.CharField(max_length=24, choices=AllocationMethod.choices)
    share_bp = models.PositiveIntegerField(
        default=BASIS_POINTS, help_text=_("Share of the emissions allocated, basis points (7000 = 70%).")
    )
    benchmark_ppm = models.BigIntegerField(
        null=True, blank=True, help_text=_("Benchmark, millionths of a tonne CO2 per output unit (e.g. per MWh).")
    )
    output_unit = models.CharField(max_length=16, blank=True, help_text=_("The output's unit, e.g. MWh."))
    heat_benchmark_ppm = models.BigIntegerField(
        null=True, blank=True, help_text=_("Heat supply benchmark, millionths of a tonne CO2 per GJ.")
    )
    factors = models.JSONField(
        default=list, blank=True, help_text=_("The correction factors each entity's input must give, by name.")
    )
    effective_from = models.DateField(help_text=_("The version applies to allocations run on or after this day."))
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=300, help_text=_("The plan or notice the rule comes from, with its article."))
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-year", "sector", "stage", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["year", "sector", "stage", "version"], name="allocation_rule_version_once"),
            models.CheckConstraint(
                condition=(
                    Q(method=AllocationMethod.BENCHMARK, benchmark_ppm__gt=0) | ~Q(method=AllocationMethod.BENCHMARK)
                )
                & Q(share_bp__lte=BASIS_POINTS, version__gte=1),
                name="allocation_rule_values_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year} {self.sector or '*'} {self.stage} v{self.version} ({self.method})"


class AllocationInput(models.Model):
    """An entity's figures for a benchmark allocation (output, heat, correction factors), one version."""

    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="allocation_inputs")
    version = models.PositiveIntegerField()
    output = models.BigIntegerField(help_text=_("Output of the year in the rule's unit (e.g. MWh generated)."))
    heat_output = models.BigIntegerField(default=0, help_text=_("Heat supplied, GJ."))
    factors = models.JSONField(default=dict, blank=True, help_text=_("Correction factors by name, in millionths."))
    reference = models.CharField(max_length=100, blank=True, help_text=_("The verified production report."))
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["obligation", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["obligation", "version"], name="allocation_input_version_once"),
            models.CheckConstraint(
                condition=Q(output__gte=0, heat_output__gte=0, version__gte=1), name="allocation_input_values_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"input v{self.version} of obligation {self.obligation_id}"


class CarryoverRule(models.Model):
    """How many allowances of vintage ``year`` or earlier an entity may use for later compliance years."""

    year = models.PositiveSmallIntegerField(
        help_text=_(
            "The last vintage carried over: up to it, vintages surrendered for a later year count against the limit."
        )
    )
    base_tonnes = models.BigIntegerField(help_text=_("The base carryover, t (10,000 in the 2023-2024 plan)."))
    net_sales_multiple_bp = models.PositiveIntegerField(
        help_text=_("Multiple of the entity's net sales added to the base, basis points (15000 = 1.5 x).")
    )
    sales_from = models.DateField(help_text=_("First trading day counted for net sales."))
    sales_to = models.DateField(help_text=_("Last trading day counted for net sales."))
    first_vintage = models.PositiveSmallIntegerField(
        help_text=_("The earliest vintage counted (2019: 2019-2020 allowances).")
    )
    enforced = models.BooleanField(
        default=True, help_text=_("Surrenders above the limit are refused (else the limit is only shown).")
    )
    timely_compliance_required = models.BooleanField(
        default=True,
        help_text=_(
            "An entity that did not complete the year, or the year before, by the deadline carries nothing over."
        ),
    )
    effective_from = models.DateField()
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=300)
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-year", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["year", "version"], name="carryover_rule_version_once"),
            models.CheckConstraint(
                condition=Q(base_tonnes__gte=0, version__gte=1, sales_to__gte=models.F("sales_from"))
                & Q(first_vintage__lte=models.F("year")),
                name="carryover_rule_values_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"carryover {self.year} v{self.version}"


class OfficialPrice(models.Model):
    """The official monthly price of a market, entered by the authority (one version)."""

    market = models.CharField(max_length=16, help_text=_("e.g. CN-ETS, the national allowance market."))
    month = models.DateField(help_text=_("The month's first day."))
    price_fen = models.BigIntegerField(help_text=_("Yuan per tonne, stored in fen."))
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=300)
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["market", "-month", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["market", "month", "version"], name="official_price_version_once"),
            models.CheckConstraint(
                condition=Q(price_fen__gt=0, version__gte=1, month__day=1), name="official_price_values_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.market} {self.month:%Y-%m} v{self.version}"


class AllocationDeduction(models.Model):
    """The registry's decision to deduct a short obligation's shortfall from the entity's next-year allocation.

    Applied once, by the first allocation of ``target_year`` that runs after it (``applied_entry``)."""

    obligation = models.OneToOneField(Obligation, on_delete=models.PROTECT, related_name="deduction")
    target_year = models.PositiveSmallIntegerField()
    quantity = models.BigIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    applied_entry = models.ForeignKey(
        AllocationEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="deductions"
    )
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-target_year", "obligation"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="deduction_quantity_positive"),
            models.CheckConstraint(
                condition=Q(applied_entry__isnull=True, applied_at__isnull=True)
                | Q(applied_entry__isnull=False, applied_at__isnull=False),
                name="deduction_applied_with_entry",
            ),
        ]

    def __str__(self) -> str:
        return f"deduct {self.quantity} t from {self.target_year} (obligation {self.obligation_id})"
