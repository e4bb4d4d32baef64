"""China's registry rules for registry staff: judicial freezes, non-trade transfers, and the CCER cycle (its
rule versions, methodology list, applications and reduction claims). Every change calls a service
(``exchange.services.freezes``, ``.nontrade``, ``.ccer``), which checks who may and records the audit event."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from accounts.actors import Actor
from accounts.admin import ServiceSaveMixin, admin_actor, run_service
from core.errors import DomainError
from exchange.admin.base import ReadOnlyAdmin, ReadOnlyInline, missing
from exchange.models import (
    Account,
    CcerRule,
    JudicialFreeze,
    Methodology,
    NonTradeTransfer,
    ProjectApplication,
    PublicComment,
    ReductionClaim,
)
from exchange.services.ccer import (
    ccer_application_decide,
    ccer_publicity_open,
    ccer_rule_add,
    methodology_add,
    methodology_set_active,
    reduction_claim_decide,
)
from exchange.services.freezes import judicial_freeze_create, judicial_freeze_release, judicial_freeze_seize
from exchange.services.nontrade import non_trade_transfer_review


class _AddOnly(ServiceSaveMixin, admin.ModelAdmin):
    """Rows entered through a service and never edited afterwards."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # the list's actions for those whose permissions allow changes; a row's page only reads
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FreezeForm(forms.ModelForm):
    class Meta:
        model = JudicialFreeze
        fields = [
            "account",
            "asset",
            "court",
            "document_number",
            "document_sha256",
            "quantity",
            "first_serial",
            "last_serial",
        ]


class FreezeOrderForm(forms.Form):
    """The court's later order that ends a freeze: its document number and the document's SHA-256."""

    document_number = forms.CharField(max_length=100, label=_("Order's document number"))
    document_sha256 = forms.CharField(min_length=64, max_length=64, label=_("SHA-256 of the order's document"))


class SeizureForm(FreezeOrderForm):
    destination = forms.CharField(
        max_length=32,
        label=_("Account the order names"),
        help_text=_("The holding account that receives the seized units, e.g. CN-100-000123."),
    )

    def clean_destination(self) -> Account:
        # Only finds the account: which accounts may receive seized units is the service's rule
        # (judicial_freeze_seize refuses any but another participant's holding account).
        number = self.cleaned_data["destination"].strip().upper()
        account = Account.objects.filter(number=number).first()
        if account is None:
            raise forms.ValidationError(_("No account has this number."))
        return account


@admin.register(JudicialFreeze)
class JudicialFreezeAdmin(_AddOnly):
    """A court's freeze order, entered here (exact serials, or the lowest available quantity); its release and
    its seizure (扣划) are the court's later orders, entered on the freeze's page (or ``POST
    /api/v1/freezes/{id}/release`` and ``/seize``)."""

    form = FreezeForm
    change_form_template = "admin/exchange/judicialfreeze/change_form.html"
    list_display = ["id", "account", "asset", "quantity", "first_serial", "last_serial", "court", "status"]
    list_filter = ["status", "asset"]
    search_fields = ["account__number", "court", "document_number"]
    list_select_related = ["account", "asset"]
    readonly_fields = ["status", "created_at", "ended_at", "end_document_number", "seized_to", "transaction"]

    def call_service(self, actor: Actor, obj: JudicialFreeze, form: forms.ModelForm, change: bool) -> Any:
        serials = (obj.first_serial, obj.last_serial) if obj.first_serial and obj.last_serial else None
        return judicial_freeze_create(
            actor=actor,
            account=obj.account,
            asset=obj.asset,
            court=obj.court,
            document_number=obj.document_number,
            document_sha256=obj.document_sha256,
            quantity=None if serials else obj.quantity,
            serials=serials,
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/release/",
                self.admin_site.admin_view(self.release_view),
                name="exchange_judicialfreeze_release",
            ),
            path(
                "<int:pk>/seize/",
                self.admin_site.admin_view(self.seize_view),
                name="exchange_judicialfreeze_seize",
            ),
            *super().get_urls(),
        ]

    def _order_view(
        self, request: HttpRequest, pk: int, form_class: type[forms.Form], title: Any, call: Any, done: Any
    ) -> HttpResponse:
        freeze = self.get_object(request, str(pk))
        if freeze is None:
            return missing(request, self, pk)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                call(admin_actor(request), freeze, form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(request, done)
                return HttpResponseRedirect(reverse("admin:exchange_judicialfreeze_change", args=[freeze.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {freeze.document_number} ({freeze.account.number})",
            "form": form,
            "opts": self.model._meta,
            "original": freeze,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)

    def release_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._order_view(
            request,
            pk,
            FreezeOrderForm,
            _("Release the freeze on the court's order"),
            lambda actor, freeze, data: judicial_freeze_release(actor=actor, freeze=freeze, **data),
            _("The freeze is released; the units are available again."),
        )

    def seize_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._order_view(
            request,
            pk,
            SeizureForm,
            _("Seize the frozen units on the court's order"),
            lambda actor, freeze, data: judicial_freeze_seize(actor=actor, freeze=freeze, **data),
            _("The frozen units are seized to the account the order names."),
        )


@admin.register(NonTradeTransfer)
class NonTradeTransferAdmin(ReadOnlyAdmin):
    """Applications for non-trade transfers. A first officer reviews them here; a second approves or rejects
    the approval request the review files (under approval requests)."""

    list_display = ["id", "source", "destination", "asset", "quantity", "legal_basis", "status", "approval"]
    list_filter = ["status", "legal_basis"]
    search_fields = ["source__number", "destination__number"]
    list_select_related = ["source", "destination", "asset", "approval"]
    actions = ["review"]

    @admin.action(description=_("Review the selected applications and file them for a second officer"))
    def review(self, request: HttpRequest, queryset: QuerySet[NonTradeTransfer]) -> None:
        for transfer in queryset:
            run_service(
                request,
                lambda actor, t=transfer: non_trade_transfer_review(actor=actor, transfer=t),
                f"Non-trade transfer {transfer.pk} reviewed.",
            )


class CcerRuleForm(forms.ModelForm):
    class Meta:
        model = CcerRule
        fields = [
            "effective_from",
            "min_crediting_years",
            "max_crediting_years",
            "forestry_min_crediting_years",
            "forestry_max_crediting_years",
            "earliest_start_date",
            "earliest_reduction_date",
            "publicity_working_days",
            "old_ccer_filed_before",
            "old_ccer_offset_cutoff",
            "source",
        ]


@admin.register(CcerRule)
class CcerRuleAdmin(_AddOnly):
    """Versions of the CCER cycle's rule; a change is a new version from its effective date."""

    form = CcerRuleForm
    list_display = [
        "effective_from",
        "min_crediting_years",
        "max_crediting_years",
        "forestry_min_crediting_years",
        "forestry_max_crediting_years",
        "publicity_working_days",
        "old_ccer_offset_cutoff",
    ]

    def call_service(self, actor: Actor, obj: CcerRule, form: forms.ModelForm, change: bool) -> Any:
        return ccer_rule_add(actor=actor, **{name: form.cleaned_data[name] for name in CcerRuleForm.base_fields})


class MethodologyForm(forms.ModelForm):
    class Meta:
        model = Methodology
        fields = ["code", "name", "name_zh", "project_type"]


@admin.register(Methodology)
class MethodologyAdmin(_AddOnly):
    """The registry's list of CCER methodologies; a withdrawn one takes no new applications."""

    form = MethodologyForm
    list_display = ["code", "name", "name_zh", "project_type", "active"]
    list_filter = ["active", "project_type"]
    actions = ["withdraw", "reinstate"]

    def call_service(self, actor: Actor, obj: Methodology, form: forms.ModelForm, change: bool) -> Any:
        return methodology_add(
            actor=actor, code=obj.code, name=obj.name, name_zh=obj.name_zh, project_type=obj.project_type
        )

    @admin.action(description=_("Withdraw the selected methodologies from new applications"))
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Methodology]) -> None:
        for m in queryset:
            run_service(request, lambda actor, m=m: methodology_set_active(actor=actor, methodology=m, active=False))

    @admin.action(description=_("Put the selected methodologies back on the list"))
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Methodology]) -> None:
        for m in queryset:
            run_service(request, lambda actor, m=m: methodology_set_active(actor=actor, methodology=m, active=True))


class ApplicationCommentInline(ReadOnlyInline):
    model = PublicComment
    fk_name = "application"
    fields = ["author", "text", "received_on"]
    readonly_fields = ["author", "text", "received_on"]


class ClaimCommentInline(ReadOnlyInline):
    model = PublicComment
    fk_name = "claim"
    fields = ["author", "text", "received_on"]
    readonly_fields = ["author", "text", "received_on"]


@admin.register(ProjectApplication)
class ProjectApplicationAdmin(ReadOnlyAdmin):
    """CCER project applications: publish one for comment, and after its window register it. (A refusal,
    with its reason, is made on the API: ``POST /api/v1/ccer/applications/{id}/decision``.)"""

    list_display = ["id", "code", "name", "owner", "methodology", "status", "publicity_start", "publicity_end"]
    list_filter = ["status", "project_type"]
    search_fields = ["code", "name", "owner__name"]
    list_select_related = ["owner", "methodology"]
    inlines = [ApplicationCommentInline]
    actions = ["open_publicity", "register"]

    @admin.action(description=_("Publish the selected applications for comment"))
    def open_publicity(self, request: HttpRequest, queryset: QuerySet[ProjectApplication]) -> None:
        for a in queryset:
            run_service(request, lambda actor, a=a: ccer_publicity_open(actor=actor, target=a), f"{a.code} published.")

    @admin.action(description=_("Register the selected projects (after their publicity window)"))
    def register(self, request: HttpRequest, queryset: QuerySet[ProjectApplication]) -> None:
        for a in queryset:
            run_service(
                request,
                lambda actor, a=a: ccer_application_decide(actor=actor, application=a, register=True),
                f"{a.code} registered.",
            )


@admin.register(ReductionClaim)
class ReductionClaimAdmin(ReadOnlyAdmin):
    """Reduction claims: publish one for comment, and after its window issue it; above the four-eyes threshold
    the issue files an approval request that a second officer decides (under approval requests). (A refusal,
    with its reason, is made on the API: ``POST /api/v1/ccer/claims/{id}/decision``.)"""

    list_display = [
        "id",
        "project",
        "vintage",
        "quantity",
        "status",
        "publicity_start",
        "publicity_end",
        "issuance",
        "approval",
    ]
    list_filter = ["status"]
    search_fields = ["project__code"]
    list_select_related = ["project", "issuance", "approval"]
    inlines = [ClaimCommentInline]
    actions = ["open_publicity", "issue"]

    @admin.action(description=_("Publish the selected claims for comment"))
    def open_publicity(self, request: HttpRequest, queryset: QuerySet[ReductionClaim]) -> None:
        for c in queryset:
            run_service(
                request, lambda actor, c=c: ccer_publicity_open(actor=actor, target=c), f"Claim {c.pk} published."
            )

    @admin.action(description=_("Issue the selected claims (after their publicity window)"))
    def issue(self, request: HttpRequest, queryset: QuerySet[ReductionClaim]) -> None:
        for c in queryset:
            done = run_service(request, lambda actor, c=c: reduction_claim_decide(actor=actor, claim=c, issue=True))
            if done is None:
                continue
            if done.issuance_id is None:
                messages.warning(
                    request,
                    _(
                        "Claim %(claim)s is above the four-eyes threshold: it waits for another registry "
                        "officer's approval (request %(approval)s)."
                    )
                    % {"claim": done.pk, "approval": done.approval_id},
                )
            else:
                messages.success(request, _("Claim %(claim)s issued.") % {"claim": done.pk})
