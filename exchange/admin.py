"""Admin for registry and exchange staff.

Reference data (accounts, projects) is created through the services; the journal, postings, serial
blocks, holds and audit events are read-only. Issuance and allocation are admin views that call the
same services as the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import ServiceSaveMixin, admin_actor, run_service
from accounts.models import Participant, ParticipantKind
from config.errors import DomainError
from exchange.api.fields import fen_to_str
from exchange.models import (
    Account,
    AllocationEntry,
    ApprovalOperation,
    ApprovalRequest,
    Asset,
    AssetKind,
    AuditEvent,
    Balance,
    Checkpoint,
    ComplianceYear,
    DailyPrice,
    Hold,
    Issuance,
    MarginCall,
    MarketRules,
    Obligation,
    Order,
    PendingTransfer,
    PledgeCollateral,
    PledgeEnforcement,
    PledgeLoan,
    PledgeValuation,
    Posting,
    Project,
    Retirement,
    SerialBlock,
    SerialMovement,
    SettlementBatch,
    Surrender,
    Trade,
    Transaction,
    TrustedAccount,
    VerifiedEmission,
)
from exchange.selectors.compliance import YearSummary, remaining, with_figures, year_summary
from exchange.services.accounts import account_open
from exchange.services.approvals import approval_approve, approval_reject, gated
from exchange.services.compliance import (
    compliance_assess,
    compliance_year_create,
    compliance_year_update,
    entities_cover,
    preallocation_run,
)
from exchange.services.issuance import (
    allocation_rows_from_csv,
    ccer_issue,
    cea_allocate,
    cea_vintage_create,
    project_register,
)
from exchange.services.pledges import (
    bp_to_percent,
    pledge_default,
    pledge_enforce,
    pledge_register,
    pledge_reject,
    pledge_release,
    pledge_request,
    pledge_top_up,
    pledge_withdraw,
)
from exchange.services.settlement import settlement_run
from exchange.services.trading import RULE_FIELDS, asset_list, market_rules_update
from exchange.services.trust import trusted_account_approve, trusted_account_remove


class ReadOnlyAdmin(admin.ModelAdmin):
    """Posted and derived rows: staff look, nobody edits (the database refuses it too)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The actions a read-only admin declares call services, which decide who may: Django would drop
        # them for want of change permission, so they are offered here regardless.
        actions = super().get_actions(request)
        for name in self.actions or ():
            if isinstance(name, str):
                func, action_name, description = _own_action(self, name)
                actions[action_name] = (func, action_name, description)
        return actions


def _missing(request: HttpRequest, model_admin: admin.ModelAdmin, pk: object) -> HttpResponse:
    """For an admin page of one object whose id doesn't exist: what the admin's change page answers (back to
    the index, with its message), not a 500."""
    message = f'{model_admin.opts.verbose_name} with ID "{pk}" does not exist. Perhaps it was deleted?'
    model_admin.message_user(request, message, messages.WARNING)
    return HttpResponseRedirect(reverse("admin:index", current_app=model_admin.admin_site.name))


def _own_action(model_admin: admin.ModelAdmin, name: str) -> tuple[Callable[..., Any], str, str]:
    """An action the admin class defines as a method (offered even without change permission)."""
    action = model_admin.get_action(name)
    if action is None:
        raise ImproperlyConfigured(f"{type(model_admin).__name__} defines no action {name!r}.")
    return action


# --- reference data --------------------------------------------------------------------------------------
@admin.register(Account)
class AccountAdmin(ServiceSaveMixin, admin.ModelAdmin):
    list_display = ["number", "kind", "participant", "name", "created_at"]
    list_filter = ["kind"]
    search_fields = ["number", "name", "participant__name"]
    autocomplete_fields = ["participant"]
    fields = ["participant", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:
        return ["participant", "name"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: Account | None = None) -> bool:
        return False

    def call_service(self, actor: Any, obj: Account, form: forms.ModelForm, change: bool) -> Account:
        return account_open(actor=actor, participant=obj.participant, name=obj.name)


class IssueForm(forms.Form):
    vintage = forms.IntegerField(min_value=2000, max_value=2100)
    monitoring_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    monitoring_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.IntegerField(min_value=1, label="Quantity (tCO2e)")
    external_reference = forms.CharField(
        max_length=100, help_text="The issuance document number; issuing twice is safe."
    )


@admin.register(Project)
class ProjectAdmin(ServiceSaveMixin, admin.ModelAdmin):
    list_display = ["code", "name", "project_type", "owner", "ets_covered", "status", "registered_at"]
    list_filter = ["project_type", "ets_covered", "status"]
    search_fields = ["code", "name", "owner__name"]
    autocomplete_fields = ["owner"]

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> list[str]:
        if obj:
            return [f.name for f in Project._meta.fields]
        return ["status", "registered_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return False

    def call_service(self, actor: Any, obj: Project, form: forms.ModelForm, change: bool) -> Project:
        return project_register(
            actor=actor,
            code=obj.code,
            name=obj.name,
            project_type=obj.project_type,
            methodology=obj.methodology,
            location=obj.location,
            owner=obj.owner,
            crediting_start=obj.crediting_start,
            crediting_end=obj.crediting_end,
            ets_covered=obj.ets_covered,
        )

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/issue/", self.admin_site.admin_view(self.issue_view), name="exchange_project_issue"),
            *super().get_urls(),
        ]

    def issue_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        project = self.get_object(request, str(pk))
        if project is None:
            return _missing(request, self, pk)
        form = IssueForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            v = form.cleaned_data
            try:
                actor = admin_actor(request)
                issuance = gated(
                    actor=actor,
                    operation=ApprovalOperation.CCER_ISSUE,
                    params={
                        **v,
                        "project": project.code,
                        "monitoring_start": v["monitoring_start"].isoformat(),
                        "monitoring_end": v["monitoring_end"].isoformat(),
                    },
                    summary=f"Issue {v['quantity']} t of {project.code} vintage {v['vintage']}",
                    call=lambda: ccer_issue(actor=actor, project=project, **v),
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                if isinstance(issuance, ApprovalRequest):
                    return _submitted(request, issuance)
                messages.success(
                    request,
                    f"Issued {issuance.quantity} t of {issuance.asset.code} "
                    f"(serials {issuance.first_serial}-{issuance.last_serial}) to {project.owner}.",
                )
                return HttpResponseRedirect(
                    reverse("admin:exchange_transaction_change", args=[issuance.transaction_id])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Issue CCER for {project}",
            "form": form,
            "opts": self.model._meta,
            "original": project,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)


class AllocationForm(forms.Form):
    asset = forms.ModelChoiceField(queryset=Asset.objects.filter(kind=AssetKind.ALLOWANCE), label="Allowance vintage")
    file = forms.FileField(help_text="CSV with one 'account,quantity' row per line; a header line is allowed.")


class VintageForm(forms.Form):
    vintage = forms.IntegerField(min_value=2000, max_value=2100)


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = ["code", "kind", "name", "vintage", "project", "serialised", "transferable", "issued"]
    list_filter = ["kind", "vintage"]
    search_fields = ["code", "name"]
    change_list_template = "admin/exchange/asset_changelist.html"

    @admin.display(description="Issued (t)")
    def issued(self, asset: Asset) -> int | str:
        return asset.next_serial - 1 if asset.serialised else "-"

    def get_urls(self) -> list[Any]:
        return [
            path("allocate/", self.admin_site.admin_view(self.allocate_view), name="exchange_asset_allocate"),
            path("new-vintage/", self.admin_site.admin_view(self.vintage_view), name="exchange_asset_vintage"),
            *super().get_urls(),
        ]

    def allocate_view(self, request: HttpRequest) -> HttpResponse:
        form = AllocationForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
                rows = allocation_rows_from_csv(text)
                actor, asset = admin_actor(request), form.cleaned_data["asset"]
                txn = gated(
                    actor=actor,
                    operation=ApprovalOperation.CEA_ALLOCATE,
                    params={
                        "asset": asset.code,
                        "rows": [[r.account.number, r.quantity] for r in rows],
                        "idempotency_key": None,
                        "memo": "Admin CSV allocation",
                    },
                    summary=f"Allocate {sum(r.quantity for r in rows)} t of {asset.code} to {len(rows)} accounts",
                    call=lambda: cea_allocate(actor=actor, asset=asset, rows=rows, memo="Admin CSV allocation"),
                )
            except UnicodeDecodeError:
                form.add_error("file", "The file is not UTF-8 text.")
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
                for error in exc.details.get("errors", []):
                    form.add_error(None, f"line {error['line']}: {error['message']}")
            else:
                if isinstance(txn, ApprovalRequest):
                    return _submitted(request, txn)
                messages.success(request, f"Allocated {sum(r.quantity for r in rows)} t to {len(rows)} accounts.")
                return HttpResponseRedirect(reverse("admin:exchange_transaction_change", args=[txn.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Allocate allowances from CSV",
            "form": form,
            "opts": self.model._meta,
            "multipart": True,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)

    def vintage_view(self, request: HttpRequest) -> HttpResponse:
        form = VintageForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                asset = cea_vintage_create(actor=admin_actor(request), vintage=form.cleaned_data["vintage"])
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(request, f"Created {asset.code}.")
                return HttpResponseRedirect(reverse("admin:exchange_asset_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Create an allowance vintage",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)


# --- the journal and its derived rows: read-only ----------------------------------------------------------
class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "asset", "quantity", "balance_after")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MovementInline(admin.TabularInline):
    model = SerialMovement
    fields = ("asset", "first", "last", "source", "destination", "state")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "created_at", "actor_label", "memo"]
    list_filter = ["kind"]
    search_fields = ["id", "memo", "idempotency_key"]
    inlines = [PostingInline, MovementInline]
    readonly_fields = [
        "kind",
        "created_at",
        "actor_user",
        "actor_participant",
        "actor_label",
        "idempotency_scope",
        "idempotency_key",
        "request_hash",
        "memo",
        "metadata",
    ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["id", "transaction", "account", "asset", "quantity", "balance_after"]
    list_filter = ["asset"]
    search_fields = ["account__number", "transaction__id"]
    list_select_related = ["account", "asset", "transaction"]


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["account", "asset", "total", "held", "available"]
    list_filter = ["asset"]
    search_fields = ["account__number", "account__participant__name"]
    list_select_related = ["account", "asset"]


@admin.register(SerialBlock)
class SerialBlockAdmin(ReadOnlyAdmin):
    list_display = ["asset", "first", "last", "size", "account", "state", "hold"]
    list_filter = ["asset", "state"]
    search_fields = ["account__number"]
    list_select_related = ["asset", "account"]


@admin.register(SerialMovement)
class SerialMovementAdmin(ReadOnlyAdmin):
    list_display = ["transaction", "asset", "first", "last", "source", "destination", "state"]
    list_filter = ["asset", "state"]
    list_select_related = ["asset", "source", "destination"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "asset",
        "kind",
        "reference",
        "quantity",
        "remaining",
        "status",
        "created_at",
        "ended_at",
    ]
    list_filter = ["kind", "status", "asset"]
    search_fields = ["reference", "account__number"]


@admin.register(Issuance)
class IssuanceAdmin(ReadOnlyAdmin):
    list_display = ["external_reference", "project", "asset", "quantity", "first_serial", "last_serial", "created_at"]
    search_fields = ["external_reference", "project__code"]


@admin.register(Retirement)
class RetirementAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "asset", "quantity", "beneficiary", "reason", "created_at"]
    search_fields = ["beneficiary", "account__number"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor_label"]


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["number", "first_seq", "last_seq", "count", "root", "sealed_at"]


# --- compliance ---------------------------------------------------------------------------------------------
class CoverForm(forms.Form):
    entities = forms.ModelMultipleChoiceField(
        queryset=Participant.objects.filter(kind=ParticipantKind.COMPLIANCE_ENTITY).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        help_text="Entities already covered stay as they are.",
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
    actions = ["preallocate", "assess"]

    def get_fields(self, request: HttpRequest, obj: ComplianceYear | None = None) -> list[Any]:
        settings = ["deadline", "preallocation_bp", "ccer_limit_bp"]
        return settings if obj else ["year", *settings]

    def get_readonly_fields(self, request: HttpRequest, obj: ComplianceYear | None = None) -> list[str]:
        return ["deadline", "preallocation_bp", "ccer_limit_bp"] if obj and obj.is_closed else []

    def has_delete_permission(self, request: HttpRequest, obj: ComplianceYear | None = None) -> bool:
        return False

    def call_service(self, actor: Any, obj: ComplianceYear, form: forms.ModelForm, change: bool) -> ComplianceYear:
        values = {k: form.cleaned_data[k] for k in ("deadline", "preallocation_bp", "ccer_limit_bp")}
        if change:
            return compliance_year_update(actor=actor, year=ComplianceYear.objects.get(pk=obj.pk), **values)
        return compliance_year_create(actor=actor, year=obj.year, **values)

    def _summary(self, year: ComplianceYear) -> YearSummary:
        if not hasattr(year, "_summary"):
            year._summary = year_summary(year)  # type: ignore[attr-defined]
        return year._summary  # type: ignore[attr-defined]

    @admin.display(description="Entities")
    def entities(self, year: ComplianceYear) -> int:
        return self._summary(year).entities

    @admin.display(description="Verified (t)")
    def verified(self, year: ComplianceYear) -> str:
        s = self._summary(year)
        return f"{s.verified} ({s.verified_entities} of {s.entities})"

    @admin.display(description="Surrendered (t)")
    def surrendered(self, year: ComplianceYear) -> int:
        return self._summary(year).surrendered

    @admin.display(description="Short entities")
    def short_entities(self, year: ComplianceYear) -> int:
        return self._summary(year).short_entities

    @admin.display(description="Short (t)")
    def shortfall(self, year: ComplianceYear) -> int:
        return self._summary(year).shortfall

    @admin.display(description="")
    def glance(self, year: ComplianceYear) -> str:
        url = reverse("admin:exchange_complianceyear_glance", args=[year.pk])
        return format_html('<a href="{}">at a glance</a>', url)

    @admin.action(description="Pre-allocate the selected years (70%% of last year's verified emissions)")
    def preallocate(self, request: HttpRequest, queryset: QuerySet[ComplianceYear]) -> None:
        for year in queryset:
            result = run_service(
                request,
                lambda actor, y=year: gated(
                    actor=actor,
                    operation=ApprovalOperation.PREALLOCATION,
                    params={"year": y.pk},
                    summary=f"Pre-allocate compliance year {y.pk}",
                    call=lambda: preallocation_run(actor=actor, year=y),
                ),
            )
            if isinstance(result, ApprovalRequest):
                messages.warning(
                    request, f"{year.year}: above the four-eyes threshold, submitted as approval {result.pk}."
                )
            elif result is not None:
                messages.info(
                    request,
                    f"{year.year}: pre-allocated to {len(result.entries)} entities, "
                    f"{sum(e.quantity for e in result.entries)} t; skipped {len(result.skipped)}.",
                )

    @admin.action(description="Assess the selected years (after their deadline)")
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
            return _missing(request, self, pk)
        rows = list(with_figures(Obligation.objects.filter(year=year).select_related("entity", "account")))
        rows.sort(key=lambda o: o.entity.name)
        for row in rows:
            row.remaining = remaining(row.verified, row.surrendered)  # type: ignore[attr-defined]
            row.penalty = (  # type: ignore[attr-defined]
                f"{fen_to_str(row.penalty_min_fen)} to {fen_to_str(row.penalty_max_fen or 0)}"
                if row.penalty_min_fen is not None and row.shortfall
                else ""
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Compliance year {year.year} at a glance",
            "opts": self.model._meta,
            "year": year,
            "summary": year_summary(year),
            "rows": rows,
        }
        return TemplateResponse(request, "admin/exchange/complianceyear/glance.html", context)

    def cover_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        year = self.get_object(request, str(pk))
        if year is None:
            return _missing(request, self, pk)
        form = CoverForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                obligations = entities_cover(
                    actor=admin_actor(request), year=year, entities=list(form.cleaned_data["entities"])
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(request, f"{len(obligations)} entities are covered for {year.year}.")
                return HttpResponseRedirect(reverse("admin:exchange_complianceyear_glance", args=[year.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Cover entities for {year.year}",
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
    ]
    list_filter = ["year", "status"]
    search_fields = ["entity__name", "account__number"]
    list_select_related = ["entity", "account"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Obligation]:
        return with_figures(super().get_queryset(request))

    @admin.display(description="Verified (t)")
    def verified(self, o: Obligation) -> Any:
        return o.verified  # type: ignore[attr-defined]

    @admin.display(description="Allocated (t)")
    def allocated(self, o: Obligation) -> Any:
        return o.allocated  # type: ignore[attr-defined]

    @admin.display(description="Surrendered (t)")
    def surrendered(self, o: Obligation) -> Any:
        return o.surrendered  # type: ignore[attr-defined]

    @admin.display(description="CCER (t)")
    def ccer_surrendered(self, o: Obligation) -> Any:
        return o.ccer_surrendered  # type: ignore[attr-defined]

    @admin.display(description="Penalty (CNY)")
    def penalty(self, o: Obligation) -> str:
        if o.penalty_min_fen is None or not o.shortfall:
            return ""
        return f"{fen_to_str(o.penalty_min_fen)} to {fen_to_str(o.penalty_max_fen or 0)}"


@admin.register(VerifiedEmission)
class VerifiedEmissionAdmin(ReadOnlyAdmin):
    list_display = ["obligation", "version", "quantity", "report_reference", "note", "created_at"]
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


admin.site.site_header = "greenledger — carbon registry and exchange"
admin.site.site_title = "greenledger"
admin.site.index_title = "Registry and exchange administration"
# The index shows the market at a glance above the app list (exchange/selectors/dashboard.py).
admin.site.index_template = "admin/greenledger_index.html"


# --- the market ----------------------------------------------------------------------------------------------
@admin.register(MarketRules)
class MarketRulesAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """Listing a new asset is done here (add) or on the API; changes go through market_rules_update."""

    list_display = [
        "asset",
        "tradable",
        "tick_fen",
        "lot",
        "block_threshold",
        "listing_band_bp",
        "block_band_bp",
        "fee_bp",
        "sessions",
        "reference_price_fen",
    ]
    list_editable = []

    def has_delete_permission(self, request: HttpRequest, obj: MarketRules | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: MarketRules | None = None) -> list[str]:
        return ["asset"] if obj else []

    def call_service(self, actor: Any, obj: MarketRules, form: forms.ModelForm, change: bool) -> MarketRules:
        fields = {name: getattr(obj, name) for name in (*RULE_FIELDS, "reference_price_fen")}
        if change:
            current = MarketRules.objects.get(pk=obj.pk)
            return market_rules_update(actor=actor, rules=current, **fields)
        reference = fields.pop("reference_price_fen")
        return asset_list(actor=actor, asset=obj.asset, reference_price_fen=reference, **fields)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """The order book: filter on status "open" to see it."""

    list_display = [
        "id",
        "asset",
        "side",
        "mode",
        "price_fen",
        "quantity",
        "filled",
        "status",
        "participant",
        "account",
        "created_at",
    ]
    list_filter = ["status", "side", "mode", "asset"]
    search_fields = ["client_order_id", "account__number", "participant__name"]
    list_select_related = ["asset", "participant", "account"]
    ordering = ["asset", "side", "price_fen", "id"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "asset",
        "mode",
        "price_fen",
        "quantity",
        "turnover_fen",
        "buyer_fee_fen",
        "seller_fee_fen",
        "trading_day",
        "settlement_batch",
    ]
    list_filter = ["asset", "mode", "trading_day"]
    list_select_related = ["asset"]


@admin.register(DailyPrice)
class DailyPriceAdmin(ReadOnlyAdmin):
    list_display = [
        "asset",
        "day",
        "open_fen",
        "high_fen",
        "low_fen",
        "close_fen",
        "volume",
        "turnover_fen",
        "trades",
        "close_from_trades",
    ]
    list_filter = ["asset"]


@admin.register(SettlementBatch)
class SettlementBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "trades_count",
        "units_total",
        "cash_total_fen",
        "fees_total_fen",
        "holds_released",
        "initiated_by",
        "started_at",
        "completed_at",
    ]
    change_list_template = "admin/exchange/settlementbatch_changelist.html"

    def get_urls(self) -> list[Any]:
        return [
            path("settle-now/", self.admin_site.admin_view(self.settle_now), name="exchange_settlementbatch_settle"),
            *super().get_urls(),
        ]

    def settle_now(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:exchange_settlementbatch_changelist"))
        try:
            actor = admin_actor(request)
            actor.require_kind(ParticipantKind.EXCHANGE, allow_system=False)
            batch = settlement_run(actor=actor)
        except DomainError as exc:
            messages.error(request, f"{exc.message} ({exc.code})")
        else:
            messages.success(request, f"Settlement batch {batch.pk}: {batch.trades_count} trades settled.")
        return HttpResponseRedirect(reverse("admin:exchange_settlementbatch_changelist"))


def _submitted(request: HttpRequest, approval: ApprovalRequest) -> HttpResponse:
    messages.warning(
        request,
        f"{approval.summary}: above the four-eyes threshold, so it waits for another registry user's approval "
        f"(request {approval.pk}).",
    )
    return HttpResponseRedirect(reverse("admin:exchange_approvalrequest_change", args=[approval.pk]))


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Four eyes: a registry user other than the requester approves (carrying the operation out) or rejects."""

    list_display = ["id", "summary", "quantity", "status", "requested_by", "requested_at", "decided_by", "decided_at"]
    list_filter = ["status", "operation"]
    actions = ["approve", "reject"]

    @admin.action(description="Approve and carry out the selected requests")
    def approve(self, request: HttpRequest, queryset: QuerySet[ApprovalRequest]) -> None:
        for approval in queryset:
            done = run_service(request, lambda actor, a=approval: approval_approve(actor=actor, approval=a))
            if done is not None:
                messages.success(request, f"Approved request {done.pk}: {done.summary} ({done.result}).")

    @admin.action(description="Reject the selected requests")
    def reject(self, request: HttpRequest, queryset: QuerySet[ApprovalRequest]) -> None:
        for approval in queryset:
            done = run_service(
                request, lambda actor, a=approval: approval_reject(actor=actor, approval=a, reason="rejected in admin")
            )
            if done is not None:
                messages.success(request, f"Rejected request {done.pk}.")


# --- pledge loans ----------------------------------------------------------------------------------------------
class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CollateralInline(ReadOnlyInline):
    model = PledgeCollateral
    fields = ("kind", "quantity", "serial_ranges", "hold", "created_at")
    readonly_fields = fields


class ValuationInline(ReadOnlyInline):
    model = PledgeValuation
    fields = ("day", "price_fen", "price_source", "quantity", "value_fen", "ltv_bp")
    readonly_fields = fields
    ordering = ["-day"]


class MarginCallInline(ReadOnlyInline):
    model = MarginCall
    fields = ("raised_on", "ltv_bp", "level_bp", "cure_by", "notified")
    readonly_fields = fields


class TopUpForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, label="Units to add (tCO2e)")


class EnforceSaleForm(forms.Form):
    price_fen = forms.IntegerField(min_value=1, label="Limit price (fen a tonne)", help_text="7200 = 72.00 yuan.")


@admin.register(PledgeLoan)
class PledgeLoanAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """The pledge register and loan book. Adding one is the borrower's request; each step is an action
    (or, for a top-up and a sale, a page) calling the same service as the API, as the logged-in user."""

    list_display = [
        "id",
        "registration_reference",
        "status",
        "borrower",
        "lender",
        "asset",
        "quantity",
        "principal",
        "rate",
        "maturity_date",
        "ltv",
        "margin_call_open",
        "valued_on",
    ]
    list_filter = ["status", "asset", "lender", "default_reason"]
    search_fields = ["registration_reference", "borrower__name", "lender__name", "account__number"]
    list_select_related = ["borrower", "lender", "asset"]
    ordering = ["-id"]
    inlines = [CollateralInline, ValuationInline, MarginCallInline]
    actions = ["accept", "reject", "withdraw", "release", "declare_default", "enforce_by_transfer"]
    autocomplete_fields = ["account", "lender"]
    request_fields = (
        "account",
        "lender",
        "asset",
        "quantity",
        "principal_fen",
        "annual_rate_bp",
        "start_date",
        "maturity_date",
        "ltv_limit_bp",
        "margin_call_bp",
        "liquidation_bp",
        "cure_period_days",
    )
    change_form_template = "admin/exchange/pledgeloan/change_form.html"

    def get_fields(self, request: HttpRequest, obj: PledgeLoan | None = None) -> tuple[str, ...]:
        if obj is None:
            return self.request_fields
        return tuple(f.name for f in PledgeLoan._meta.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: PledgeLoan | None = None) -> tuple[str, ...]:
        return self.get_fields(request, obj) if obj else ()

    def get_inlines(self, request: HttpRequest, obj: PledgeLoan | None = None) -> list[Any]:
        return self.inlines if obj else []  # a request has no collateral, valuations or calls yet

    def has_delete_permission(self, request: HttpRequest, obj: PledgeLoan | None = None) -> bool:
        return False

    @admin.display(description="Principal (yuan)", ordering="principal_fen")
    def principal(self, loan: PledgeLoan) -> str:
        return fen_to_str(loan.principal_fen)

    @admin.display(description="Rate", ordering="annual_rate_bp")
    def rate(self, loan: PledgeLoan) -> str:
        return f"{bp_to_percent(loan.annual_rate_bp)}%"

    @admin.display(description="LTV", ordering="ltv_bp")
    def ltv(self, loan: PledgeLoan) -> str:
        return f"{bp_to_percent(loan.ltv_bp)}%"

    @admin.display(description="Margin call", boolean=True, ordering="margin_call")
    def margin_call_open(self, loan: PledgeLoan) -> bool:
        return loan.margin_call_id is not None

    def call_service(self, actor: Any, obj: PledgeLoan, form: forms.ModelForm, change: bool) -> PledgeLoan:
        return pledge_request(
            actor=actor,
            account=obj.account,
            lender=obj.lender,
            asset=obj.asset,
            quantity=obj.quantity,
            principal_fen=obj.principal_fen,
            annual_rate_bp=obj.annual_rate_bp,
            start_date=obj.start_date,
            maturity_date=obj.maturity_date,
            ltv_limit_bp=obj.ltv_limit_bp,
            margin_call_bp=obj.margin_call_bp,
            liquidation_bp=obj.liquidation_bp,
            cure_period_days=obj.cure_period_days,
        )

    def _each(self, request: HttpRequest, queryset: QuerySet[PledgeLoan], call: Any, done: str) -> None:
        for loan in queryset:
            run_service(request, lambda actor, loan=loan: call(actor, loan), success=f"{loan}: {done}.")

    @admin.action(description="Accept and register the selected requests (lender)")
    def accept(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_register(actor=actor, loan=loan), "registered")

    @admin.action(description="Reject the selected requests (lender)")
    def reject(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_reject(actor=actor, loan=loan), "rejected")

    @admin.action(description="Withdraw the selected requests (borrower)")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_withdraw(actor=actor, loan=loan), "withdrawn")

    @admin.action(description="Record repayment and release the selected pledges (lender)")
    def release(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_release(actor=actor, loan=loan), "released")

    @admin.action(description="Declare the selected loans in default (lender)")
    def declare_default(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_default(actor=actor, loan=loan), "in default")

    @admin.action(description="Enforce the selected defaulted pledges: units to the lender (lender)")
    def enforce_by_transfer(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, loan: pledge_enforce(actor=actor, loan=loan, method="transfer"),
            "enforced by transfer",
        )

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/top-up/", self.admin_site.admin_view(self.top_up_view), name="exchange_pledgeloan_top_up"),
            path(
                "<int:pk>/enforce-sale/",
                self.admin_site.admin_view(self.enforce_sale_view),
                name="exchange_pledgeloan_enforce_sale",
            ),
            *super().get_urls(),
        ]

    def _step_view(
        self, request: HttpRequest, pk: int, form_class: type[forms.Form], title: str, call: Any
    ) -> HttpResponse:
        loan = self.get_object(request, str(pk))
        if loan is None:
            return _missing(request, self, pk)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                call(admin_actor(request), loan, form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(request, f"{loan}: done.")
                return HttpResponseRedirect(reverse("admin:exchange_pledgeloan_change", args=[loan.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {loan}",
            "form": form,
            "opts": self.model._meta,
            "original": loan,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)

    def top_up_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._step_view(
            request,
            pk,
            TopUpForm,
            "Top up collateral",
            lambda actor, loan, data: pledge_top_up(actor=actor, loan=loan, quantity=data["quantity"]),
        )

    def enforce_sale_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._step_view(
            request,
            pk,
            EnforceSaleForm,
            "Enforce by sale on the exchange",
            lambda actor, loan, data: pledge_enforce(
                actor=actor, loan=loan, method="sale", price_fen=data["price_fen"]
            ),
        )


@admin.register(PledgeValuation)
class PledgeValuationAdmin(ReadOnlyAdmin):
    list_display = ["loan", "day", "price_fen", "price_source", "quantity", "value_fen", "ltv", "created_at"]
    list_filter = ["day", "price_source"]
    search_fields = ["loan__registration_reference"]
    list_select_related = ["loan"]

    @admin.display(description="LTV", ordering="ltv_bp")
    def ltv(self, valuation: PledgeValuation) -> str:
        return f"{bp_to_percent(valuation.ltv_bp)}%"


@admin.register(MarginCall)
class MarginCallAdmin(ReadOnlyAdmin):
    list_display = ["id", "loan", "raised_on", "ltv_bp", "level_bp", "cure_by", "created_at"]
    list_filter = ["raised_on"]
    search_fields = ["loan__registration_reference"]
    list_select_related = ["loan"]


@admin.register(PledgeEnforcement)
class PledgeEnforcementAdmin(ReadOnlyAdmin):
    list_display = [
        "loan",
        "method",
        "status",
        "day",
        "amount_due_fen",
        "units_sold",
        "proceeds_fen",
        "fees_fen",
        "paid_to_lender_fen",
        "units_to_lender",
        "units_released",
        "completed_at",
    ]
    list_filter = ["method", "status"]
    list_select_related = ["loan"]


@admin.register(TrustedAccount)
class TrustedAccountAdmin(ReadOnlyAdmin):
    """Participants' trusted destination accounts; a second admin of the participant approves in the API,
    or here if they act for that participant."""

    list_display = ["participant", "account", "label", "status", "proposed_by", "approved_by", "effective_at"]
    list_filter = ["status"]
    search_fields = ["participant__name", "account__number"]
    actions = ["approve", "remove"]

    @admin.action(description="Approve the selected entries (a second admin of their participant)")
    def approve(self, request: HttpRequest, queryset: QuerySet[TrustedAccount]) -> None:
        for entry in queryset:
            run_service(
                request, lambda actor, e=entry: trusted_account_approve(actor=actor, entry=e), f"Approved {entry}."
            )

    @admin.action(description="Remove the selected entries from their trusted lists")
    def remove(self, request: HttpRequest, queryset: QuerySet[TrustedAccount]) -> None:
        for entry in queryset:
            run_service(
                request, lambda actor, e=entry: trusted_account_remove(actor=actor, entry=e), f"Removed {entry}."
            )


@admin.register(PendingTransfer)
class PendingTransferAdmin(ReadOnlyAdmin):
    """Transfers to untrusted accounts waiting for their delay (the sender cancels them on the API)."""

    list_display = [
        "id",
        "participant",
        "source",
        "destination",
        "asset",
        "quantity",
        "status",
        "execute_after",
        "transaction",
    ]
    list_filter = ["status", "asset"]
    search_fields = ["source__number", "destination__number", "participant__name"]
    list_select_related = ["participant", "source", "destination", "asset"]
