"""The CCER project cycle of the 2023 Measures (温室气体自愿减排交易管理办法 (试行), MEE/SAMR 2023).

- ``CcerRule``: the cycle's numbers as data, one row per version with its effective date (crediting period
  bounds, earliest start and reduction dates, the publicity window in working days, the old-CCER dates).
- ``Methodology``: the registry's list of methodologies a project may use (CCER-14-001 afforestation ...).
- ``ProjectApplication``: an owner applies with a validation body's report; the registry publishes it for
  comment, then registers the project (a ``Project``) or refuses it.
- ``ReductionClaim``: the owner claims a project's reductions with a verifier's report; the registry
  publishes it, then issues them (``exchange.services.issuance.ccer_issue``) or refuses them.
- ``PublicComment``: a comment received during a publicity window, on an application or a claim.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.assets import Issuance, Project, ProjectType

SHA256_REGEX = r"^[0-9a-f]{64}$"


class CcerRule(models.Model):
    effective_from = models.DateField(unique=True, verbose_name=_("effective from"))
    min_crediting_years = models.PositiveSmallIntegerField(verbose_name=_("shortest crediting period (years)"))
    max_crediting_years = models.PositiveSmallIntegerField(verbose_name=_("longest crediting period (years)"))
    forestry_min_crediting_years = models.PositiveSmallIntegerField(
        verbose_name=_("shortest crediting period of a forestry sink (years)")
    )
    forestry_max_crediting_years = models.PositiveSmallIntegerField(
        verbose_name=_("longest crediting period of a forestry sink (years)")
    )
    earliest_start_date = models.DateField(verbose_name=_("earliest project start"))
    earliest_reduction_date = models.DateField(verbose_name=_("earliest reduction"))
    publicity_working_days = models.PositiveSmallIntegerField(verbose_name=_("publicity window (working days)"))
    old_ccer_filed_before = models.DateField(verbose_name=_("old CCER: filed before"))
    old_ccer_offset_cutoff = models.DateField(verbose_name=_("old CCER: last day it offsets"))
    source = models.CharField(max_length=300, verbose_name=_("source"))
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-effective_from"]
        verbose_name = _("CCER rule")
        verbose_name_plural = _("CCER rules")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    min_crediting_years__gte=1,
                    max_crediting_years__gte=models.F("min_crediting_years"),
                    forestry_min_crediting_years__gte=1,
                    forestry_max_crediting_years__gte=models.F("forestry_min_crediting_years"),
                    publicity_working_days__gte=1,
                ),
                name="ccer_rule_bounds_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"CCER rule from {self.effective_from}"


class Methodology(models.Model):
    code = models.CharField(max_length=32, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    name_zh = models.CharField(max_length=200, blank=True)
    project_type = models.CharField(max_length=16, choices=ProjectType.choices)
    active = models.BooleanField(default=True, help_text=_("New applications may use it."))
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]
        verbose_name = _("methodology")
        verbose_name_plural = _("methodologies")
        constraints = [
            models.CheckConstraint(condition=models.Q(code__regex=r"^CCER-[0-9]{2}-[0-9]{3}"), name="methodology_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class CycleStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    PUBLICITY = "publicity", _("Published for comment")
    REGISTERED = "registered", _("Registered")  # an application
    ISSUED = "issued", _("Issued")  # a claim
    REFUSED = "refused", _("Refused")


DECIDED = [CycleStatus.REGISTERED, CycleStatus.ISSUED, CycleStatus.REFUSED]


def _cycle_constraints(prefix: str, done: str, result: str, report: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(
            condition=models.Q(status=CycleStatus.APPLIED, publicity_start__isnull=True)
            | (~models.Q(status=CycleStatus.APPLIED) & models.Q(publicity_start__isnull=False)),
            name=f"{prefix}_published_iff_not_applied",
        ),
        models.CheckConstraint(
            condition=models.Q(status__in=[done, CycleStatus.REFUSED], decided_at__isnull=False)
            | (~models.Q(status__in=[done, CycleStatus.REFUSED]) & models.Q(decided_at__isnull=True)),
            name=f"{prefix}_decided_iff_final",
        ),
        models.CheckConstraint(
            condition=models.Q(status=done, **{f"{result}__isnull": False})
            | (~models.Q(status=done) & models.Q(**{f"{result}__isnull": True})),
            name=f"{prefix}_result_iff_done",
        ),
        models.CheckConstraint(
            condition=models.Q(**{f"{report}__regex": SHA256_REGEX}),
            name=f"{prefix}_report_sha256",
        ),
    ]


class ProjectApplication(models.Model):
    code = models.CharField(max_length=40, verbose_name=_("project code"))
    name = models.CharField(max_length=200)
    project_type = models.CharField(max_length=16, choices=ProjectType.choices)
    methodology = models.ForeignKey(Methodology, on_delete=models.PROTECT, related_name="applications")
    location = models.CharField(max_length=200)
    owner = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="ccer_applications")
    start_date = models.DateField(verbose_name=_("start of construction"))
    crediting_start = models.DateField()
    crediting_end = models.DateField()
    validation_body = models.CharField(max_length=200, verbose_name=_("validation body"))
    validation_report_sha256 = models.CharField(max_length=64, verbose_name=_("validation report SHA-256"))
    status = models.CharField(max_length=16, choices=CycleStatus.choices, default=CycleStatus.APPLIED)
    rule = models.ForeignKey(CcerRule, on_delete=models.PROTECT, related_name="+")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()
    publicity_start = models.DateField(null=True, blank=True)
    publicity_end = models.DateField(null=True, blank=True, help_text=_("The last working day of the window."))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    project = models.OneToOneField(Project, on_delete=models.PROTECT, null=True, blank=True, related_name="application")

    class Meta:
        ordering = ["-id"]
        verbose_name = _("CCER project application")
        verbose_name_plural = _("CCER project applications")
        constraints = [
            *_cycle_constraints("ccer_app", CycleStatus.REGISTERED, "project", "validation_report_sha256"),
            models.CheckConstraint(
                condition=models.Q(crediting_end__gte=models.F("crediting_start")), name="ccer_app_period_ordered"
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=~models.Q(status=CycleStatus.REFUSED),
                name="ccer_app_one_open_per_code",
            ),
        ]

    def __str__(self) -> str:
        return f"application {self.pk}: {self.code} ({self.status})"


class ReductionClaim(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="reduction_claims")
    vintage = models.PositiveSmallIntegerField()
    monitoring_start = models.DateField()
    monitoring_end = models.DateField()
    quantity = models.BigIntegerField()
    verification_body = models.CharField(max_length=200, verbose_name=_("verification body"))
    verification_report_sha256 = models.CharField(max_length=64, verbose_name=_("verification report SHA-256"))
    status = models.CharField(max_length=16, choices=CycleStatus.choices, default=CycleStatus.APPLIED)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()
    publicity_start = models.DateField(null=True, blank=True)
    publicity_end = models.DateField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    issuance = models.OneToOneField(
        Issuance, on_delete=models.PROTECT, null=True, blank=True, related_name="reduction_claim"
    )
    approval = models.OneToOneField(
        "exchange.ApprovalRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reduction_claim",
        help_text=_("The four-eyes request a claim above the threshold waits on; its decision decides the claim."),
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("CCER reduction claim")
        verbose_name_plural = _("CCER reduction claims")
        constraints = [
            *_cycle_constraints("ccer_claim", CycleStatus.ISSUED, "issuance", "verification_report_sha256"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="ccer_claim_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(monitoring_end__gte=models.F("monitoring_start")),
                name="ccer_claim_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"claim {self.pk}: {self.quantity} t of {self.project_id} ({self.status})"


class PublicComment(models.Model):
    application = models.ForeignKey(
        ProjectApplication, on_delete=models.PROTECT, null=True, blank=True, related_name="comments"
    )
    claim = models.ForeignKey(ReductionClaim, on_delete=models.PROTECT, null=True, blank=True, related_name="comments")
    author = models.CharField(max_length=200, verbose_name=_("author"))
    text = models.TextField(max_length=5000)
    received_on = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name = _("public comment")
        verbose_name_plural = _("public comments")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(application__isnull=False, claim__isnull=True)
                | models.Q(application__isnull=True, claim__isnull=False),
                name="comment_on_one_thing",
            ),
        ]

    def __str__(self) -> str:
        return f"comment {self.pk} by {self.author}"
