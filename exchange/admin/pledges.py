"""Pledge loans: the register and loan book, with each step an action or page calling the pledge services;
valuations, margin calls and enforcements, read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ServiceSaveMixin, admin_actor, run_service
from core.errors import DomainError
from exchange.admin.base import (
    ParticipantScopedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    missing,
    sees_every_participant,
    visible_participant,
)
from exchange.admin_site import YuanField
from exchange.api.fields import fen_to_str
from exchange.models import (
    AmendmentKind,
    MarginCall,
    PledgeAmendment,
    PledgeCollateral,
    PledgeEnforcement,
    PledgeLoan,
    PledgeValuation,
)
from exchange.selectors.pledges import exposures
from exchange.services.approvals import pledge_amendment_register_or_file, pledge_register_or_file
from exchange.services.pledges import (
    bp_to_percent,
    pledge_confirm,
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_enforcement_decline,
    pledge_reject,
    pledge_release,
    pledge_request,
    pledge_withdraw,
)
from exchange.services.pledges.amendments import (
    pledge_amendment_confirm,
    pledge_amendment_reject,
    pledge_amendment_request,
)
from exchange.services.pledges.compliance_release import (
    pledge_compliance_release_decide,
    pledge_compliance_release_request,
)
from exchange.services.pledges.terms import eligible_lenders


class LoanPartInline(ReadOnlyInline):
    """A part of a pledge loan shown on its page: whoever may open the loan's page sees its parts (the page
    holds only a loan the user's participant is party to), with or without the part's own admin page."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        opts = PledgeLoan._meta
        return any(request.user.has_perm(f"{opts.app_label}.{a}_{opts.model_name}") for a in ("view", "change"))


class CollateralInline(LoanPartInline):
    model = PledgeCollateral
    fields = ("kind", "quantity", "serial_ranges", "hold", "created_at")
    readonly_fields = fields


class AmendmentInline(LoanPartInline):
    model = PledgeAmendment
    fields = ("reference", "kind", "status", "quantity", "serial_ranges", "maturity_date", "registered_at")
    readonly_fields = fields


class ValuationInline(LoanPartInline):
    model = PledgeValuation
    fields = ("day", "price_fen", "price_source", "quantity", "value_fen", "ltv_bp")
    readonly_fields = fields
    ordering = ["-day"]


class MarginCallInline(LoanPartInline):
    model = MarginCall
    fields = ("raised_on", "ltv_bp", "level_bp", "cure_by")
    readonly_fields = fields


class TopUpForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, label=_("Units to add (tCO2e)"))


class ComplianceReleaseForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, label=_("Pledged units to surrender (t)"))
    year = forms.IntegerField(min_value=2000, max_value=2100, label=_("Compliance year"))
    substitute_quantity = forms.IntegerField(min_value=0, initial=0, label=_("Substitute units to pledge (t)"))
    substitute_cash_fen = YuanField(
        min_fen=0,
        initial=0,
        label=_("Substitute cash to hold under the pledge (yuan)"),
        help_text=_("e.g. 8,000.00, held on the borrower's cash account once the lender consents."),
    )


# Money is typed in yuan (two decimals at most, as the admin's model forms take it) and kept in fen: each
# form's ``*_fen`` value is the integer the service takes.
class EnforceSaleForm(forms.Form):
    price_fen = YuanField(min_fen=1, label=_("Limit price (yuan a tonne)"), help_text=_("e.g. 72.00"))
    costs_fen = YuanField(min_fen=0, initial=0, label=_("Costs of enforcement (yuan)"))


class EnforceAgreementForm(forms.Form):
    price_fen = YuanField(
        min_fen=1,
        label=_("Agreed value (yuan a tonne)"),
        help_text=_("Within the valuation band around the reference price."),
    )
    costs_fen = YuanField(min_fen=0, initial=0, label=_("Costs of enforcement (yuan)"))


class CourtOrderForm(forms.Form):
    court_reference = forms.CharField(max_length=100, label=_("Court order reference"))
    document_sha256 = forms.CharField(min_length=64, max_length=64, label=_("SHA-256 of the order's document"))
    units_to_lender = forms.IntegerField(min_value=0, label=_("Units the order gives the lender"))
    price_fen = YuanField(min_fen=1, label=_("Value the order states (yuan a tonne)"))
    costs_fen = YuanField(min_fen=0, initial=0, label=_("Costs of enforcement (yuan)"))


@admin.register(PledgeLoan)
class PledgeLoanAdmin(ServiceSaveMixin, ParticipantScopedAdmin):
    """The pledge register and loan book. Adding one is the borrower's request; each step is an action
    (or, for a top-up amendment, a release for compliance and an enforcement, a page) calling the same service as
    the API, as the logged-in user. A participant's member sees the loans it borrows or lends, and requests one
    against its own accounts only."""

    participant_paths = ("borrower", "lender")
    own_choices = {"account": "participant"}

    list_display = [
        "id",
        "registration_reference",
        "external_registration_reference",
        "kind",
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
    # the lenders of the loans listed (a bank's member sees its own name, not every lender's)
    list_filter = ["status", "asset", ("lender", admin.RelatedOnlyFieldListFilter), "default_reason"]
    search_fields = ["registration_reference", "borrower__name", "lender__name", "account__number"]
    list_select_related = ["borrower", "lender", "asset"]
    ordering = ["-id"]
    inlines = [CollateralInline, AmendmentInline, ValuationInline, MarginCallInline]
    actions = [
        "accept",
        "register",
        "reject",
        "withdraw",
        "release",
        "declare_default",
        "agree_valuation",
        "decline_valuation",
        "consent_compliance_release",
        "refuse_compliance_release",
    ]
    autocomplete_fields = ["account", "lender"]
    request_fields = (
        "account",
        "lender",
        "asset",
        "quantity",
        "principal_fen",
        "annual_rate_bp",
        "day_count",
        "start_date",
        "maturity_date",
        "ltv_limit_bp",
        "margin_call_bp",
        "liquidation_bp",
        "cure_period_days",
    )
    change_form_template = "admin/exchange/pledgeloan/change_form.html"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "lender" and not sees_every_participant(request.user):
            # the lenders the service accepts for this borrower, not every participant's name
            kwargs["queryset"] = eligible_lenders(visible_participant(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

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

    @admin.display(description=_("Principal (yuan)"), ordering="principal_fen")
    def principal(self, loan: PledgeLoan) -> str:
        return fen_to_str(loan.principal_fen)

    @admin.display(description=_("Rate"), ordering="annual_rate_bp")
    def rate(self, loan: PledgeLoan) -> str:
        return f"{bp_to_percent(loan.annual_rate_bp)}%"

    @admin.display(description=_("LTV"), ordering="ltv_bp")
    def ltv(self, loan: PledgeLoan) -> str:
        return f"{bp_to_percent(loan.ltv_bp)}%"

    @admin.display(description=_("Margin call"), boolean=True, ordering="margin_call")
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
            day_count=obj.day_count,
            start_date=obj.start_date,
            maturity_date=obj.maturity_date,
            ltv_limit_bp=obj.ltv_limit_bp,
            margin_call_bp=obj.margin_call_bp,
            liquidation_bp=obj.liquidation_bp,
            cure_period_days=obj.cure_period_days,
        )

    def _each(self, request: HttpRequest, queryset: QuerySet[PledgeLoan], call: Any, done: Promise) -> None:
        for loan in queryset:
            run_service(request, lambda actor, loan=loan: call(actor, loan), success=f"{loan}: {done}.")

    @admin.action(description=_("Confirm the terms of the selected requests: apply jointly (lender)"))
    def accept(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, loan: pledge_confirm(actor=actor, loan=loan, terms_digest=loan.terms_digest),
            _("applied for registration"),
        )

    @admin.action(description=_("Register the selected joint applications (registry; four eyes above the threshold)"))
    def register(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, loan: pledge_register_or_file(actor=actor, loan=loan),
            _("registered, or filed for a second registry user's approval"),
        )

    @admin.action(description=_("Reject the selected requests (lender)"))
    def reject(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_reject(actor=actor, loan=loan), _("rejected"))

    @admin.action(description=_("Withdraw the selected requests (borrower)"))
    def withdraw(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_withdraw(actor=actor, loan=loan), _("withdrawn"))

    @admin.action(description=_("Record repayment and release the selected pledges (lender)"))
    def release(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_release(actor=actor, loan=loan), _("released"))

    @admin.action(description=_("Declare the selected loans in default (lender)"))
    def declare_default(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(request, queryset, lambda actor, loan: pledge_default(actor=actor, loan=loan), _("in default"))

    @admin.action(description=_("Agree the lender's proposed valuation (borrower)"))
    def agree_valuation(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request, queryset, lambda actor, loan: pledge_enforcement_agree(actor=actor, loan=loan), _("enforced")
        )

    @admin.action(description=_("Decline the lender's proposed valuation (borrower)"))
    def decline_valuation(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request, queryset, lambda actor, loan: pledge_enforcement_decline(actor=actor, loan=loan), _("declined")
        )

    @admin.action(description=_("Consent to the selected release for compliance, holding any substitute cash (lender)"))
    def consent_compliance_release(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, loan: pledge_compliance_release_decide(actor=actor, loan=loan, consent=True),
            _("released for compliance"),
        )

    @admin.action(description=_("Refuse the selected release for compliance (lender)"))
    def refuse_compliance_release(self, request: HttpRequest, queryset: QuerySet[PledgeLoan]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, loan: pledge_compliance_release_decide(actor=actor, loan=loan, consent=False),
            _("release for compliance refused"),
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/compliance-release/",
                self.admin_site.admin_view(self.compliance_release_view),
                name="exchange_pledgeloan_compliance_release",
            ),
            path("<int:pk>/top-up/", self.admin_site.admin_view(self.top_up_view), name="exchange_pledgeloan_top_up"),
            path(
                "<int:pk>/enforce-sale/",
                self.admin_site.admin_view(self.enforce_sale_view),
                name="exchange_pledgeloan_enforce_sale",
            ),
            path(
                "<int:pk>/enforce-agreement/",
                self.admin_site.admin_view(self.enforce_agreement_view),
                name="exchange_pledgeloan_enforce_agreement",
            ),
            path(
                "<int:pk>/court-order/",
                self.admin_site.admin_view(self.court_order_view),
                name="exchange_pledgeloan_court_order",
            ),
            path("exposure/", self.admin_site.admin_view(self.exposure_view), name="exchange_pledgeloan_exposure"),
            *super().get_urls(),
        ]

    def _step_view(
        self, request: HttpRequest, pk: int, form_class: type[forms.Form], title: str | Promise, call: Any
    ) -> HttpResponse:
        loan = self.get_object(request, str(pk))
        if loan is None:
            return missing(request, self, pk)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                call(admin_actor(request), loan, form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(request, gettext("%(pledge)s: done.") % {"pledge": loan})
                return HttpResponseRedirect(reverse("admin:exchange_pledgeloan_change", args=[loan.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {loan}",
            "form": form,
            "opts": self.model._meta,
            "original": loan,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)

    def exposure_view(self, request: HttpRequest) -> HttpResponse:
        """The pledge register's totals: each lender's exposure (a bank sees its own)."""
        actor = admin_actor(request)
        rows = exposures(None if actor.sees_everything else actor.participant_id)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Lenders' pledge exposure"),
            "rows": rows,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exchange/pledgeloan/exposure.html", context)

    def top_up_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The borrower applies for a top-up amendment (the one way to add collateral): the lender confirms it
        and the registry registers it under Pledge amendments; the units are frozen at registration."""
        return self._step_view(
            request,
            pk,
            TopUpForm,
            _("Apply for a top-up amendment (borrower)"),
            lambda actor, loan, data: pledge_amendment_request(
                actor=actor, loan=loan, kind=AmendmentKind.TOP_UP, quantity=data["quantity"]
            ),
        )

    def compliance_release_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The borrower asks to surrender pledged units, with substitute units or cash in their place."""
        return self._step_view(
            request,
            pk,
            ComplianceReleaseForm,
            _("Release for compliance against substitute units or cash (borrower)"),
            lambda actor, loan, data: pledge_compliance_release_request(actor=actor, loan=loan, **data),
        )

    def enforce_sale_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._step_view(
            request,
            pk,
            EnforceSaleForm,
            _("Enforce by sale on the exchange"),
            lambda actor, loan, data: pledge_enforce(
                actor=actor, loan=loan, method="sale", price_fen=data["price_fen"], costs_fen=data["costs_fen"]
            ),
        )

    def enforce_agreement_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._step_view(
            request,
            pk,
            EnforceAgreementForm,
            _("Propose a valuation for enforcement by agreement"),
            lambda actor, loan, data: pledge_enforce(
                actor=actor, loan=loan, method="agreement", price_fen=data["price_fen"], costs_fen=data["costs_fen"]
            ),
        )

    def court_order_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._step_view(
            request,
            pk,
            CourtOrderForm,
            _("Execute a court order (registry)"),
            lambda actor, loan, data: pledge_enforce_court_order(actor=actor, loan=loan, **data),
        )


@admin.register(PledgeValuation)
class PledgeValuationAdmin(ParticipantScopedAdmin, ReadOnlyAdmin):
    participant_paths = ("loan__borrower", "loan__lender")
    list_display = ["loan", "day", "price_fen", "price_source", "quantity", "value_fen", "ltv", "created_at"]
    list_filter = ["day", "price_source"]
    search_fields = ["loan__registration_reference"]
    list_select_related = ["loan"]

    @admin.display(description=_("LTV"), ordering="ltv_bp")
    def ltv(self, valuation: PledgeValuation) -> str:
        return f"{bp_to_percent(valuation.ltv_bp)}%"


@admin.register(MarginCall)
class MarginCallAdmin(ParticipantScopedAdmin, ReadOnlyAdmin):
    participant_paths = ("loan__borrower", "loan__lender")
    list_display = ["id", "loan", "raised_on", "ltv_bp", "level_bp", "cure_by", "created_at"]
    list_filter = ["raised_on"]
    search_fields = ["loan__registration_reference"]
    list_select_related = ["loan"]


@admin.register(PledgeEnforcement)
class PledgeEnforcementAdmin(ParticipantScopedAdmin, ReadOnlyAdmin):
    participant_paths = ("loan__borrower", "loan__lender")
    list_display = [
        "loan",
        "method",
        "status",
        "day",
        "amount_due_fen",
        "value_fen",
        "units_sold",
        "proceeds_fen",
        "fees_fen",
        "paid_to_lender_fen",
        "units_to_lender",
        "units_released",
        "units_unsold",
        "court_reference",
        "completed_at",
    ]
    list_filter = ["method", "status"]
    list_select_related = ["loan"]


@admin.register(PledgeAmendment)
class PledgeAmendmentAdmin(ParticipantScopedAdmin, ReadOnlyAdmin):
    """Amendments of registered pledges (top-up, partial release, extension): the lender confirms, the registry
    registers (four eyes above the threshold) or rejects; the services decide who may."""

    participant_paths = ("loan__borrower", "loan__lender")

    list_display = ["id", "loan", "kind", "status", "quantity", "maturity_date", "reference", "registered_at"]
    list_filter = ["kind", "status"]
    search_fields = ["loan__registration_reference", "reference"]
    list_select_related = ["loan"]
    actions = ["confirm", "register", "reject"]

    def _each(self, request: HttpRequest, queryset: QuerySet[PledgeAmendment], call: Any, done: Promise) -> None:
        for amendment in queryset.select_related("loan"):
            run_service(request, lambda actor, a=amendment: call(actor, a), success=f"{amendment}: {done}.")

    @admin.action(description=_("Confirm the terms of the selected amendments (lender)"))
    def confirm(self, request: HttpRequest, queryset: QuerySet[PledgeAmendment]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, a: pledge_amendment_confirm(actor=actor, amendment=a, terms_digest=a.terms_digest),
            _("applied for registration"),
        )

    @admin.action(description=_("Register the selected amendments (registry; four eyes above the threshold)"))
    def register(self, request: HttpRequest, queryset: QuerySet[PledgeAmendment]) -> None:
        self._each(
            request,
            queryset,
            lambda actor, a: pledge_amendment_register_or_file(actor=actor, amendment=a),
            _("registered, or filed for a second registry user's approval"),
        )

    @admin.action(description=_("Reject the selected amendments"))
    def reject(self, request: HttpRequest, queryset: QuerySet[PledgeAmendment]) -> None:
        self._each(request, queryset, lambda actor, a: pledge_amendment_reject(actor=actor, amendment=a), _("rejected"))
