"""What is held: allowances (CEA) by vintage, CCER batches of a project, and cash (CNY in fen).

Allowances and CCER are serialised: every unit has a serial number within its asset, handed out in
order from ``Asset.next_serial`` by issuance and allocation, never reused.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant


class AssetKind(models.TextChoices):
    ALLOWANCE = "allowance", _("Allowance (CEA)")
    CCER = "ccer", _("Certified emission reduction (CCER)")
    CASH = "cash", _("Cash")


class ProjectType(models.TextChoices):
    FORESTRY = "forestry", _("Forestry carbon sink")
    RENEWABLE = "renewable", _("Renewable energy")
    METHANE = "methane", _("Methane capture and use")
    EFFICIENCY = "efficiency", _("Energy efficiency")
    OTHER = "other", _("Other")


class ProjectStatus(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    CLOSED = "closed", _("Closed")


class Project(models.Model):
    """A CCER project, registered by the registry; its verified reductions are issued in batches."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    project_type = models.CharField(max_length=16, choices=ProjectType.choices)
    methodology = models.CharField(max_length=64, help_text=_("e.g. CCER-14-001-V01 (afforestation)"))
    location = models.CharField(max_length=200)
    owner = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="projects")
    crediting_start = models.DateField()
    crediting_end = models.DateField()
    ets_covered = models.BooleanField(
        default=False, help_text=_("Run by an entity covered by the ETS: its CCER can't be surrendered.")
    )
    status = models.CharField(max_length=16, choices=ProjectStatus.choices, default=ProjectStatus.REGISTERED)
    registered_at = models.DateTimeField(auto_now_add=True)
    # The 2023 Measures' facts of a project (exchange.models.ccer); blank on projects registered before them.
    start_date = models.DateField(null=True, blank=True, help_text=_("Start of construction."))
    methodology_ref = models.ForeignKey(
        "exchange.Methodology", on_delete=models.PROTECT, null=True, blank=True, related_name="projects"
    )
    validation_body = models.CharField(max_length=200, blank=True)
    validation_report_sha256 = models.CharField(max_length=64, blank=True)
    filed_on = models.DateField(null=True, blank=True, help_text=_("When the project was first filed."))
    old_ccer = models.BooleanField(
        default=False, help_text=_("Filed before 14 March 2017 (old CCER): offsets only until its cut-off.")
    )
    offset_cutoff = models.DateField(
        null=True, blank=True, help_text=_("Old CCER: the last day its units may be surrendered.")
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(crediting_end__gte=models.F("crediting_start")),
                name="project_crediting_period_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(old_ccer=False, offset_cutoff__isnull=True)
                | models.Q(old_ccer=True, offset_cutoff__isnull=False, filed_on__isnull=False),
                name="project_old_ccer_has_cutoff",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Asset(models.Model):
    code = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=AssetKind.choices)
    name = models.CharField(max_length=200)
    vintage = models.PositiveSmallIntegerField(null=True, blank=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True, related_name="assets")
    serialised = models.BooleanField()
    transferable = models.BooleanField(default=True)
    next_serial = models.BigIntegerField(default=1, help_text=_("The serial number the next issuance starts at."))
    market = models.ForeignKey(
        "exchange.Market",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="instruments",
        help_text=_("The market whose rulebook it trades and is held under (none for cash)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind=AssetKind.CASH, serialised=False, vintage__isnull=True)
                | models.Q(kind__in=[AssetKind.ALLOWANCE, AssetKind.CCER], serialised=True, vintage__isnull=False),
                name="asset_serialised_iff_unit_with_vintage",
            ),
            models.CheckConstraint(
                condition=models.Q(kind=AssetKind.CCER, project__isnull=False)
                | (~models.Q(kind=AssetKind.CCER) & models.Q(project__isnull=True)),
                name="asset_ccer_has_project",
            ),
            models.CheckConstraint(condition=models.Q(next_serial__gte=1), name="asset_next_serial_positive"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_cash(self) -> bool:
        return self.kind == AssetKind.CASH


class Issuance(models.Model):
    """One issuance of a CCER batch: verified reductions of a monitoring period become units.

    ``external_reference`` (the registry's issuance document number) makes issuance idempotent.
    """

    external_reference = models.CharField(max_length=100, unique=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="issuances")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="issuances")
    monitoring_start = models.DateField()
    monitoring_end = models.DateField()
    quantity = models.BigIntegerField()
    first_serial = models.BigIntegerField()
    last_serial = models.BigIntegerField()
    transaction = models.OneToOneField("exchange.Transaction", on_delete=models.PROTECT, related_name="issuance")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="issuance_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(monitoring_end__gte=models.F("monitoring_start")),
                name="issuance_monitoring_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_reference}: {self.quantity} t of {self.asset_id}"
