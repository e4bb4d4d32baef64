"""Registry reference data: accounts, projects (and their CCER issuance page), assets (and the allowance
allocation and vintage pages), serial blocks and movements, issuances and retirements."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from accounts.admin import ServiceSaveMixin, admin_actor
from core.errors import DomainError
from core.i18n import registry_text
from core.text import sentence
from exchange.admin.base import ReadOnlyAdmin, missing, submitted
from exchange.models import (
    Account,
    ApprovalOperation,
    ApprovalRequest,
    Asset,
    AssetKind,
    Issuance,
    Project,
    Retirement,
    SerialBlock,
    SerialMovement,
)
from exchange.services.accounts import account_open
from exchange.services.approval_summaries import allocate_summary, issue_summary
from exchange.services.approvals import gated
from exchange.services.issuance import (
    allocation_rows_from_csv,
    ccer_issue,
    cea_allocate,
    cea_vintage_create,
    project_register,
)


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
    quantity = forms.IntegerField(min_value=1, label=_("Quantity (tCO2e)"))
    external_reference = forms.CharField(
        max_length=100, help_text=_("The issuance document number; issuing twice is safe.")
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
            return missing(request, self, pk)
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
                    summary=issue_summary(quantity=v["quantity"], project=project.code, vintage=v["vintage"]),
                    call=lambda: ccer_issue(actor=actor, project=project, **v),
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                if isinstance(issuance, ApprovalRequest):
                    return submitted(request, issuance)
                messages.success(
                    request,
                    sentence(
                        gettext("Issued %(quantity)s t of %(asset)s (serials %(first)s-%(last)s) to %(owner)s")
                        % {
                            "quantity": f"{issuance.quantity:,}",
                            "asset": issuance.asset.code,
                            "first": issuance.first_serial,
                            "last": issuance.last_serial,
                            "owner": project.owner,
                        }
                    ),
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
    asset = forms.ModelChoiceField(
        queryset=Asset.objects.filter(kind=AssetKind.ALLOWANCE), label=_("Allowance vintage")
    )
    file = forms.FileField(help_text=_("CSV with one 'account,quantity' row per line; a header line is allowed."))


class VintageForm(forms.Form):
    vintage = forms.IntegerField(min_value=2000, max_value=2100)


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = ["code", "kind", "name", "vintage", "project", "serialised", "transferable", "issued"]
    list_filter = ["kind", "vintage"]
    search_fields = ["code", "name"]
    change_list_template = "admin/exchange/asset_changelist.html"

    @admin.display(description=_("Issued (t)"))
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
                memo = registry_text(gettext_noop("Admin CSV allocation"))
                txn = gated(
                    actor=actor,
                    operation=ApprovalOperation.CEA_ALLOCATE,
                    params={
                        "asset": asset.code,
                        "rows": [[r.account.number, r.quantity] for r in rows],
                        "idempotency_key": None,
                        "memo": memo,
                    },
                    summary=allocate_summary(asset=asset.code, quantities=[r.quantity for r in rows]),
                    call=lambda: cea_allocate(actor=actor, asset=asset, rows=rows, memo=memo),
                )
            except UnicodeDecodeError:
                form.add_error("file", gettext("The file is not UTF-8 text."))
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
                for error in exc.details.get("errors", []):
                    form.add_error(
                        None,
                        gettext("line %(line)s: %(message)s") % {"line": error["line"], "message": error["message"]},
                    )
            else:
                if isinstance(txn, ApprovalRequest):
                    return submitted(request, txn)
                messages.success(
                    request,
                    gettext("Allocated %(quantity)s t to %(accounts)s accounts.")
                    % {"quantity": f"{sum(r.quantity for r in rows):,}", "accounts": len(rows)},
                )
                return HttpResponseRedirect(reverse("admin:exchange_transaction_change", args=[txn.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Allocate allowances from CSV"),
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
                messages.success(request, gettext("Created %(asset)s.") % {"asset": asset.code})
                return HttpResponseRedirect(reverse("admin:exchange_asset_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Create an allowance vintage"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)


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


@admin.register(Issuance)
class IssuanceAdmin(ReadOnlyAdmin):
    list_display = ["external_reference", "project", "asset", "quantity", "first_serial", "last_serial", "created_at"]
    search_fields = ["external_reference", "project__code"]


@admin.register(Retirement)
class RetirementAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "asset", "quantity", "beneficiary", "reason", "created_at"]
    search_fields = ["beneficiary", "account__number"]
