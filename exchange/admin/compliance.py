"""Compliance years (settings, pre-allocation, assessment, the at-a-glance and cover pages), obligations,
verified emissions, allocation entries and surrenders."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ServiceSaveMixin, admin_actor, run_service
from accounts.models import Participant, ParticipantKind
from core.errors import DomainError
from exchange.admin.base import ReadOnlyAdmin, above_threshold, missing
from exchange.admin.compliance_rules import carryover_column, decide_deduction, final_allocation
from exchange.admin_site import tonnes, yuan
from exchange.models import (
    AllocationEntry,
    ApprovalOperation,
    ApprovalRequest,
    ComplianceYear,
    Obligation,
    Surrender,
    VerifiedEmission,
)
from exchange.selectors.compliance import YearSummary, remaining, with_figures, year_summary
from exchange.services.approval_summaries import preallocation_summary
from exchange.services.approvals import gated
from exchange.services.compliance import (
    compliance_assess,
    compliance_year_create,
    compliance_year_update,
    entities_cover,
    preallocation_run,
)


class CoverForm(forms.Form):
    entities = forms.ModelMultipleChoiceField(
        queryset=Participant.objects.filter(kind=ParticipantKind.COMPLIANCE_ENTITY).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Entities already covered stay as they are."),
    )


@admin.register(ComplianceYear)
class ComplianceYearAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """The compliance years, each at a glance: entities, verified, surrendered, short."""

    list_display = [
        "year",
        "deadline",
        "entities",
        "verified",
        "surrendered",
        "short_entities",
        "shortfall",
        "closed_at",
        "glance",
    ]
    actions = ["preallocate", final_allocation, "assess"]

    def get_fields(self, request: HttpRequest, obj: ComplianceYear | None = None) -> list[Any]:
        settings = ["deadline", "preallocation_bp", "ccer_limit_bp", "emissions_due"]
        return [*settings, "market"] if obj else ["year", *settings]

    def get_readonly_fields(self, request: HttpRequest, obj: ComplianceYear | None = None) -> list[str]:
        if obj is None:
            return []
        settings = ["deadline", "preallocation_bp", "ccer_limit_bp", "emissions_due"]
        return [*settings, "market"] if obj.is_closed else ["market"]

    def has_delete_permission(self, request: HttpRequest, obj: ComplianceYear | None = None) -> bool:
        return False

    def call_service(self, actor: Any, obj: ComplianceYear, form: forms.ModelForm, change: bool) -> ComplianceYear:
        values = {
            k: form.cleaned_data.get(k) for k in ("deadline", "preallocation_bp", "ccer_limit_bp", "emissions_due")
        }
        if change:
            return compliance_year_update(actor=actor, year=ComplianceYear.objects.get(pk=obj.pk), **values)
        return compliance_year_create(actor=actor, year=obj.year, **values)

    def _summary(self, year: ComplianceYear) -> YearSummary:
        if not hasattr(year, "_summary"):
            year._summary = year_summary(year)  # type: ignore[attr-defined]
        return year._summary  # type: ignore[attr-defined]

    @admin.display(description=_("Entities"))
    def entities(self, year: ComplianceYear) -> int:
        return self._summary(year).entities

    @admin.display(description=_("Verified (t)"))
    def verified(self, year: ComplianceYear) -> str:
        s = self._summary(year)
        return f"{s.verified} ({s.verified_entities} of {s.entities})"

    @admin.display(description=_("Surrendered (t)"))
    def surrendered(self, year: ComplianceYear) -> int:
        return self._summary(year).surrendered

    @admin.display(description=_("Short entities"))
    def short_entities(self, year: ComplianceYear) -> int:
        return self._summary(year).short_entities

    @admin.display(description=_("Short (t)"))
    def shortfall(self, year: ComplianceYear) -> int:
        return self._summary(year).shortfall

    @admin.display(description="")
    def glance(self, year: ComplianceYear) -> str:
        url = reverse("admin:exchange_complianceyear_glance", args=[year.pk])
        return format_html('<a href="{}">{}</a>', url, _("at a glance"))

    @admin.action(
        description=_("Pre-allocate the selected years (each sector's pre-allocation rule; default 70%% of last year)")
    )
    def preallocate(self, request: HttpRequest, queryset: QuerySet[ComplianceYear]) -> None:
        for year in queryset:
            result = run_service(
                request,
                lambda actor, y=year: gated(
                    actor=actor,
                    operation=ApprovalOperation.PREALLOCATION,
                    params={"year": y.pk},
                    summary=preallocation_summary(y.pk),
                    call=lambda: preallocation_run(actor=actor, year=y),
                ),
            )
            if isinstance(result, ApprovalRequest):
                messages.warning(request, above_threshold(year.year, result.pk))
            elif result is not None:
                messages.info(
                    request,
                    gettext("%(year)s: pre-allocated to %(entities)s entities, %(quantity)s t; skipped %(skipped)s.")
                    % {
                        "year": year.year,
                        "entities": len(result.entries),
                        "quantity": f"{sum(e.quantity for e in result.entries):,}",
                        "skipped": len(result.skipped),
                    },
                )

    @admin.action(description=_("Assess the selected years (after their deadline)"))
    def assess(self, request: HttpRequest, queryset: QuerySet[ComplianceYear]) -> None:
        for year in queryset:
            run_service(
                request,
                lambda actor, y=year: compliance_assess(actor=actor, year=y),
                f"{year.year} assessed: statuses, shortfalls and penalty ranges are set.",
            )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/glance/",
                self.admin_site.admin_view(self.glance_view),
                name="exchange_complianceyear_glance",
            ),
            path(
                "<int:pk>/cover/",
                self.admin_site.admin_view(self.cover_view),
                name="exchange_complianceyear_cover",
            ),
            *super().get_urls(),
        ]

    def glance_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        year = self.get_object(request, str(pk))
        if year is None:
            return missing(request, self, pk)
        rows = list(with_figures(Obligation.objects.filter(year=year).select_related("entity", "account")))
        rows.sort(key=lambda o: o.entity.name)
        for row in rows:
            row.remaining = remaining(row.verified, row.surrendered)  # type: ignore[attr-defined]
            row.penalty = (  # type: ignore[attr-defined]
                f"{yuan(row.penalty_min_fen)} ~ {yuan(row.penalty_max_fen or 0)}"
                if row.penalty_min_fen is not None and row.shortfall
                else ""
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Compliance year %(year)s at a glance") % {"year": year.year},
            "opts": self.model._meta,
            "year": year,
            "summary": year_summary(year),
            "rows": rows,
        }
        return TemplateResponse(request, "admin/exchange/complianceyear/glance.html", context)

    def cover_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        year = self.get_object(request, str(pk))
        if year is None:
            return missing(request, self, pk)
        form = CoverForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                obligations = entities_cover(
                    actor=admin_actor(request), year=year, entities=list(form.cleaned_data["entities"])
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(
                    request,
                    gettext("%(count)s entities are covered for %(year)s.")
                    % {"count": len(obligations), "year": year.year},
                )
                return HttpResponseRedirect(reverse("admin:exchange_complianceyear_glance", args=[year.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Cover entities for %(year)s") % {"year": year.year},
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)


@admin.register(Obligation)
class ObligationAdmin(ReadOnlyAdmin):
    list_display = [
        "entity",
        "year",
        "account",
        "status",
        "verified",
        "allocated",
        "surrendered",
        "ccer_surrendered",
        "shortfall",
        "penalty",
        "deducted_next_year",
        "carryover",
    ]
    list_filter = ["year", "status", "sector"]
    actions = [decide_deduction]
    search_fields = ["entity__name", "account__number"]
    list_select_related = ["entity", "account", "deduction"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Obligation]:
        return with_figures(super().get_queryset(request))

    @admin.display(description=_("Verified (t)"))
    def verified(self, o: Obligation) -> Any:
        return tonnes(o.verified)  # type: ignore[attr-defined]

    @admin.display(description=_("Allocated (t)"))
    def allocated(self, o: Obligation) -> Any:
        # What the ledger allocated of the year's vintage, as the glance and the dashboard count it.
        return tonnes(o.allocated_units)  # type: ignore[attr-defined]

    @admin.display(description=_("Surrendered (t)"))
    def surrendered(self, o: Obligation) -> Any:
        return tonnes(o.surrendered)  # type: ignore[attr-defined]

    @admin.display(description=_("CCER (t)"))
    def ccer_surrendered(self, o: Obligation) -> Any:
        return tonnes(o.ccer_surrendered)  # type: ignore[attr-defined]

    @admin.display(description=_("Deducted next year (t)"))
    def deducted_next_year(self, o: Obligation) -> Any:
        found = getattr(o, "deduction", None)
        return "" if found is None else found.quantity

    @admin.display(description=_("Carryover used / limit"))
    def carryover(self, o: Obligation) -> str:
        return carryover_column(o)

    @admin.display(description=_("Penalty (yuan)"))
    def penalty(self, o: Obligation) -> str:
        if o.penalty_min_fen is None or not o.shortfall:
            return ""
        return f"{yuan(o.penalty_min_fen)} ~ {yuan(o.penalty_max_fen or 0)}"


@admin.register(VerifiedEmission)
class VerifiedEmissionAdmin(ReadOnlyAdmin):
    list_display = ["obligation", "version", "quantity", "conservative", "report_reference", "note", "created_at"]
    list_filter = ["obligation__year"]
    search_fields = ["obligation__entity__name", "report_reference"]


@admin.register(AllocationEntry)
class AllocationEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "obligation",
        "kind",
        "outcome",
        "basis",
        "allocated_before",
        "quantity",
        "computed",
        "deducted",
        "rule",
        "shortfall",
        "transaction",
        "created_at",
    ]
    list_filter = ["kind", "outcome", "obligation__year"]
    search_fields = ["obligation__entity__name"]


@admin.register(Surrender)
class SurrenderAdmin(ReadOnlyAdmin):
    list_display = ["id", "obligation", "account", "quantity", "ccer_quantity", "transaction", "created_at"]
    list_filter = ["obligation__year"]
    search_fields = ["account__number", "obligation__entity__name"]
