"""The compliance rules held as data (allocation rules, carryover rules, official monthly prices: entered as
new versions through their services, never edited), the benchmark inputs, the deductions (等量核减), and the
registry's actions on them: deciding a deduction, running the final allocation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from accounts.admin import ServiceSaveMixin, run_service
from core.i18n import registry_text
from exchange.admin.base import ReadOnlyAdmin, above_threshold
from exchange.api.fields import fen_to_str
from exchange.models import (
    AllocationDeduction,
    AllocationInput,
    AllocationRule,
    ApprovalOperation,
    ApprovalRequest,
    CarryoverRule,
    ComplianceYear,
    Obligation,
    OfficialPrice,
)
from exchange.selectors.compliance_rules import carryover_limit, carryover_rules_for
from exchange.services.allocation import allocation_final_run, allocation_rule_set, deduction_decide
from exchange.services.approval_summaries import final_allocation_summary
from exchange.services.approvals import gated
from exchange.services.compliance_rules import carryover_rule_set, official_price_set


class VersionedRuleAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """A rule is entered as a new version through its service; versions are never edited or deleted."""

    entered_fields: list[str] = []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.entered_fields if obj is None else [*self.entered_fields, "version", "actor_label", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AllocationRule)
class AllocationRuleAdmin(VersionedRuleAdmin):
    list_display = [
        "year",
        "sector",
        "stage",
        "method",
        "share_bp",
        "benchmark_ppm",
        "effective_from",
        "version",
        "source",
    ]
    list_filter = ["year", "stage", "method", "sector"]
    entered_fields = [
        "year",
        "sector",
        "stage",
        "method",
        "share_bp",
        "benchmark_ppm",
        "heat_benchmark_ppm",
        "output_unit",
        "factors",
        "effective_from",
        "source",
    ]

    def call_service(self, actor: Any, obj: AllocationRule, form: forms.ModelForm, change: bool) -> AllocationRule:
        return allocation_rule_set(
            actor=actor,
            year=obj.year,
            sector=obj.sector,
            stage=obj.stage,
            method=obj.method,
            share_bp=obj.share_bp,
            benchmark_ppm=obj.benchmark_ppm,
            heat_benchmark_ppm=obj.heat_benchmark_ppm,
            output_unit=obj.output_unit,
            factors=list(obj.factors or []),
            effective_from=obj.effective_from,
            source=obj.source,
        )


@admin.register(CarryoverRule)
class CarryoverRuleAdmin(VersionedRuleAdmin):
    list_display = [
        "year",
        "first_vintage",
        "base_tonnes",
        "net_sales_multiple_bp",
        "sales_from",
        "sales_to",
        "enforced",
        "effective_from",
        "version",
        "source",
    ]
    entered_fields = [
        "year",
        "first_vintage",
        "base_tonnes",
        "net_sales_multiple_bp",
        "sales_from",
        "sales_to",
        "enforced",
        "timely_compliance_required",
        "effective_from",
        "source",
    ]

    def call_service(self, actor: Any, obj: CarryoverRule, form: forms.ModelForm, change: bool) -> CarryoverRule:
        return carryover_rule_set(actor=actor, **{name: getattr(obj, name) for name in self.entered_fields})


@admin.register(OfficialPrice)
class OfficialPriceAdmin(VersionedRuleAdmin):
    list_display = ["market", "month", "price", "version", "source", "created_at"]
    list_filter = ["market"]
    entered_fields = ["market", "month", "price_fen", "source"]

    @admin.display(description=_("Price (CNY/t)"))
    def price(self, price: OfficialPrice) -> str:
        return fen_to_str(price.price_fen)

    def call_service(self, actor: Any, obj: OfficialPrice, form: forms.ModelForm, change: bool) -> OfficialPrice:
        return official_price_set(
            actor=actor, market=obj.market, month=obj.month, price_fen=obj.price_fen, source=obj.source
        )


@admin.register(AllocationInput)
class AllocationInputAdmin(ReadOnlyAdmin):
    list_display = ["obligation", "version", "output", "heat_output", "factors", "reference", "created_at"]
    list_filter = ["obligation__year"]
    search_fields = ["obligation__entity__name", "reference"]


@admin.register(AllocationDeduction)
class AllocationDeductionAdmin(ReadOnlyAdmin):
    list_display = ["obligation", "target_year", "quantity", "reason", "created_at", "applied_entry", "applied_at"]
    list_filter = ["target_year"]
    search_fields = ["obligation__entity__name"]


# --- actions on obligations and years (added to the compliance admins) ----------------------------------
@admin.action(description=_("Deduct the unsurrendered shortfall from the next year's allocation"))
def decide_deduction(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Obligation]) -> None:
    for obligation in queryset:
        deduction = run_service(
            request,
            lambda actor, o=obligation: deduction_decide(
                actor=actor, obligation=o, reason=registry_text(gettext_noop("decided in admin"))
            ),
        )
        if deduction is not None:
            messages.success(
                request,
                gettext("%(obligation)s: %(quantity)s t to be deducted from the %(year)s allocation.")
                % {"obligation": obligation, "quantity": f"{deduction.quantity:,}", "year": deduction.target_year},
            )


@admin.action(description=_("Run the final allocation of the selected years (each sector's final rule)"))
def final_allocation(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ComplianceYear]) -> None:
    for year in queryset:
        result = run_service(
            request,
            lambda actor, y=year: gated(
                actor=actor,
                operation=ApprovalOperation.FINAL_ALLOCATION,
                params={"year": y.pk, "today": timezone.localdate().isoformat()},
                summary=final_allocation_summary(y.pk),
                call=lambda: allocation_final_run(actor=actor, year=y),
            ),
        )
        if isinstance(result, ApprovalRequest):
            messages.warning(request, above_threshold(year.year, result.pk))
        elif result is not None:
            messages.info(
                request,
                gettext("%(year)s: %(entities)s entities trued up to their final allocation; skipped %(skipped)s.")
                % {"year": year.year, "entities": len(result.entries), "skipped": len(result.skipped)},
            )


def carryover_column(obligation: Obligation) -> str:
    """The entity's carryover limits under the plan years' rules that bear on this year: used / limit."""
    parts = []
    for rule in carryover_rules_for(obligation.year_id, timezone.localdate()):
        limit = carryover_limit(obligation.entity_id, rule)
        parts.append(f"{rule.first_vintage}-{rule.year}: {limit.used} / {limit.limit} t")
    return "; ".join(parts)
