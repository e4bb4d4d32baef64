"""Pledge loans on the API: requests and each step of their life, the lender's loan book and the
registry's pledge register (JSON or ``?format=csv``), and each pledge's daily valuations.

Borrowers see their own pledges and lenders the pledges addressed to them; the registry, the exchange and
auditors see every one. Anyone else's pledge answers 404 ``pledge_not_found``. Rates and LTV levels are
basis points (385 = 3.85%); money is a decimal string of yuan; LTV is shown in basis points and as a
percent string ("62.50").
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Participant, ParticipantKind
from accounts.permissions import KindRequired
from core import clock
from core.errors import InvalidInput
from exchange.api.approvals import PENDING_OUT, pending_response
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin, CsvRenderer, csv_response
from exchange.api.fields import (
    AssetField,
    ChoiceFilter,
    DateFilter,
    IdField,
    IdFilter,
    MoneyField,
    QuantityField,
    SerialRangeField,
    fen_to_str,
)
from exchange.api.idempotency import idempotent_request
from exchange.errors import ProjectNotFound
from exchange.models import (
    ApprovalRequest,
    DayCount,
    EnforcementMethod,
    HoldStatus,
    PledgeCollateral,
    PledgeEnforcement,
    PledgeLoan,
    PledgeStatus,
    PledgeValuation,
    Project,
)
from exchange.selectors.accounts import account_owned
from exchange.selectors.pledges import (
    LtvBand,
    exposures,
    in_ltv_band,
    loan_book,
    pledge_by_pk,
    pledge_visible,
    pledges_visible_to,
    registered_pledges,
    valuations_of,
)
from exchange.services.approvals import pledge_register_or_file
from exchange.services.pledges import (
    DEFAULT_CURE_DAYS,
    MAX_CURE_DAYS,
    InvalidLender,
    InvalidPledgeTerms,
    bp_to_percent,
    loan_interest_fen,
    pledge_confirm,
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_enforcement_decline,
    pledge_external_reference_record,
    pledge_reject,
    pledge_release,
    pledge_request,
    pledge_withdraw,
)
from exchange.services.pledges.common import asset_label
from exchange.services.pledges.compliance_release import (
    pledge_compliance_release_decide,
    pledge_compliance_release_request,
)
from exchange.services.pledges.future import pledge_request_future

LenderOnlyReads = KindRequired(ParticipantKind.FINANCIAL_INSTITUTION, for_reads=True)
OverseersOnlyReads = KindRequired(
    ParticipantKind.REGISTRY, ParticipantKind.EXCHANGE, ParticipantKind.AUDITOR, for_reads=True
)


# --- representations ---------------------------------------------------------------------------------------
class PartyOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CollateralOut(serializers.ModelSerializer):
    serials = serializers.JSONField(source="serial_ranges")
    frozen = serializers.SerializerMethodField(help_text=_("Whether its hold still freezes the units."))

    class Meta:
        model = PledgeCollateral
        fields = ["kind", "quantity", "serials", "frozen", "created_at"]

    def get_frozen(self, collateral: PledgeCollateral) -> bool:
        return collateral.hold.status == HoldStatus.ACTIVE


class MarginCallOut(serializers.Serializer):
    id = serializers.IntegerField()
    raised_on = serializers.DateField()
    ltv_bp = serializers.IntegerField()
    level_bp = serializers.IntegerField()
    cure_by = serializers.DateField()


class EnforcementOut(serializers.ModelSerializer):
    price = MoneyField(
        source="price_fen", allow_null=True, help_text=_("Sale: the limit price. Agreement, court: the value a tonne.")
    )
    interest = MoneyField(source="interest_fen")
    costs = MoneyField(source="costs_fen", help_text=_("The lender's costs of enforcement."))
    amount_due = MoneyField(
        source="amount_due_fen", help_text=_("The debt: principal, interest, costs, less earlier rounds.")
    )
    value = MoneyField(source="value_fen", help_text=_("Agreement, court: the value of the units the lender took."))
    cash_to_lender = MoneyField(
        source="cash_to_lender_fen", help_text=_("Cash held as collateral that the lender took first, up to the debt.")
    )
    received_by_lender = MoneyField(source="received_by_lender_fen")
    proceeds = MoneyField(source="proceeds_fen", help_text=_("Turnover of settled sales less the seller's fees."))
    seller_fees = MoneyField(source="fees_fen", help_text=_("Borne by the borrower (taken from the proceeds)."))
    paid_to_lender = MoneyField(source="paid_to_lender_fen")
    surplus_to_borrower = MoneyField(source="surplus_fen")
    shortfall = MoneyField(source="shortfall_fen")

    class Meta:
        model = PledgeEnforcement
        fields = [
            "id",
            "method",
            "status",
            "day",
            "price",
            "order",
            "units_sold",
            "interest",
            "costs",
            "amount_due",
            "value",
            "cash_to_lender",
            "received_by_lender",
            "proceeds",
            "seller_fees",
            "paid_to_lender",
            "surplus_to_borrower",
            "shortfall",
            "units_to_lender",
            "units_released",
            "units_unsold",
            "court_reference",
            "court_document_sha256",
            "transaction",
            "started_at",
            "completed_at",
        ]


class PledgeOut(serializers.ModelSerializer):
    borrower = PartyOut()
    account = serializers.CharField(source="account.number")
    lender = PartyOut()
    lender_account = serializers.CharField(source="lender_account.number", allow_null=True)
    asset = serializers.SerializerMethodField(
        help_text=_("The pledged asset's code; for future CCER not issued yet, future:<project>:<vintage>.")
    )
    kind = serializers.CharField(help_text=_("units, or future (CCER of a registered project, not issued yet)."))
    principal = MoneyField(source="principal_fen")
    annual_rate_percent = serializers.SerializerMethodField()
    start = serializers.DateField(source="start_date")
    maturity = serializers.DateField(source="maturity_date")
    price = MoneyField(source="price_fen", help_text=_("Price per tonne of the latest valuation."))
    collateral_value = MoneyField(source="collateral_value_fen")
    cash_collateral = MoneyField(
        source="cash_collateral_fen", help_text=_("The borrower's cash held under the pledge (part of the value).")
    )
    ltv_percent = serializers.SerializerMethodField()
    margin_call = MarginCallOut(allow_null=True, help_text=_("The margin call open now, if any."))
    interest = MoneyField(source="interest_fen", allow_null=True)
    collateral = CollateralOut(many=True)
    enforcement = serializers.SerializerMethodField()
    interest_to_date = serializers.SerializerMethodField(
        help_text=_("Interest from the start to today by the loan's day count (yuan); while the loan is open.")
    )
    certificate_url = serializers.SerializerMethodField(
        help_text=_("The public registration certificate, once registered.")
    )

    class Meta:
        model = PledgeLoan
        fields = [
            "id",
            "registration_reference",
            "certificate_url",
            "external_registration_reference",
            "terms_digest",
            "lender_confirmed_at",
            "status",
            "borrower",
            "account",
            "lender",
            "lender_account",
            "kind",
            "asset",
            "quantity",
            "principal",
            "annual_rate_bp",
            "annual_rate_percent",
            "day_count",
            "interest_to_date",
            "start",
            "maturity",
            "ltv_limit_bp",
            "margin_call_bp",
            "liquidation_bp",
            "cure_period_days",
            "price",
            "collateral_value",
            "cash_collateral",
            "ltv_bp",
            "ltv_percent",
            "valued_on",
            "margin_call",
            "past_maturity_on",
            "defaulted_on",
            "default_reason",
            "closed_on",
            "interest",
            "note",
            "collateral",
            "enforcement",
            "requested_at",
            "registered_at",
        ]

    def get_certificate_url(self, loan: PledgeLoan) -> str | None:
        if not loan.registration_reference:
            return None
        path = reverse("registry:pledge-certificate", args=[loan.registration_reference])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_interest_to_date(self, loan: PledgeLoan) -> str | None:
        if loan.status not in (PledgeStatus.REGISTERED, PledgeStatus.DEFAULTED):
            return None
        return fen_to_str(loan_interest_fen(loan, clock.trading_day()))

    def get_asset(self, loan: PledgeLoan) -> str:
        return asset_label(loan)

    def get_annual_rate_percent(self, loan: PledgeLoan) -> str:
        return bp_to_percent(loan.annual_rate_bp)

    def get_ltv_percent(self, loan: PledgeLoan) -> str:
        return bp_to_percent(loan.ltv_bp)

    @extend_schema_field(EnforcementOut(allow_null=True))
    def get_enforcement(self, loan: PledgeLoan) -> dict[str, Any] | None:
        enforcement = loan.enforcement  # the latest round
        return EnforcementOut(enforcement).data if enforcement is not None else None


class ValuationOut(serializers.ModelSerializer):
    price = MoneyField(source="price_fen")
    value = MoneyField(source="value_fen")
    principal = MoneyField(source="principal_fen")
    ltv_percent = serializers.SerializerMethodField()
    margin_call = serializers.SerializerMethodField(help_text=_("The margin call this valuation raised, if any."))

    class Meta:
        model = PledgeValuation
        fields = [
            "day",
            "price",
            "price_day",
            "price_source",
            "quantity",
            "value",
            "principal",
            "ltv_bp",
            "ltv_percent",
            "margin_call",
        ]

    def get_ltv_percent(self, valuation: PledgeValuation) -> str:
        return bp_to_percent(valuation.ltv_bp)

    def get_margin_call(self, valuation: PledgeValuation) -> int | None:
        call = getattr(valuation, "margin_call", None)
        return call.pk if call is not None else None


# --- lists: everything you may see, the loan book, the register (JSON or CSV) -------------------------------
class PledgeFilter(filters.FilterSet):
    status = ChoiceFilter(choices=PledgeStatus.choices)
    asset = filters.CharFilter(field_name="asset__code")
    ltv_band = ChoiceFilter(
        choices=LtvBand.CHOICES, method="filter_ltv_band", help_text=_("Relative to each loan's own levels.")
    )
    # Whole numbers a bigint holds: a plain NumberFilter lets a huge number through to a database error (a 500).
    ltv_min_bp = IdFilter(field_name="ltv_bp", lookup_expr="gte")
    ltv_max_bp = IdFilter(field_name="ltv_bp", lookup_expr="lte")
    maturity_after = DateFilter(field_name="maturity_date", lookup_expr="gte")
    maturity_before = DateFilter(field_name="maturity_date", lookup_expr="lte")
    borrower = IdFilter(field_name="borrower_id")
    lender = IdFilter(field_name="lender_id")

    class Meta:
        model = PledgeLoan
        fields = ["status", "asset", "borrower", "lender"]

    def filter_ltv_band(self, queryset: QuerySet[PledgeLoan], name: str, value: str) -> QuerySet[PledgeLoan]:
        return in_ltv_band(queryset, value)


CSV_HEADER = [
    "id",
    "registration_reference",
    "status",
    "borrower",
    "account",
    "lender",
    "lender_account",
    "asset",
    "quantity",
    "serials",
    "principal",
    "annual_rate_percent",
    "start",
    "maturity",
    "price",
    "collateral_value",
    "cash_collateral",
    "ltv_percent",
    "ltv_limit_percent",
    "margin_call_percent",
    "liquidation_percent",
    "margin_call_open_since",
    "valued_on",
    "past_maturity_on",
    "defaulted_on",
    "closed_on",
    "registered_at",
    "kind",
    "external_registration_reference",
    "day_count",
    "interest_to_date",
    "margin_calls",
    "enforcement_method",
    "enforcement_status",
    "enforcement_debt",
    "enforcement_received_by_lender",
    "enforcement_units_released",
    "enforcement_surplus_to_borrower",
]


def _csv_row(loan: PledgeLoan) -> list[Any]:
    serials = ";".join(f"{first}-{last}" for c in loan.collateral.all() for first, last in c.serial_ranges)
    return [
        loan.pk,
        loan.registration_reference or "",
        loan.status,
        loan.borrower.name,
        loan.account.number,
        loan.lender.name,
        loan.lender_account.number if loan.lender_account else "",
        asset_label(loan),
        loan.quantity,
        serials,
        fen_to_str(loan.principal_fen),
        bp_to_percent(loan.annual_rate_bp),
        loan.start_date,
        loan.maturity_date,
        fen_to_str(loan.price_fen),
        fen_to_str(loan.collateral_value_fen),
        fen_to_str(loan.cash_collateral_fen),
        bp_to_percent(loan.ltv_bp),
        bp_to_percent(loan.ltv_limit_bp),
        bp_to_percent(loan.margin_call_bp),
        bp_to_percent(loan.liquidation_bp),
        loan.margin_call.raised_on if loan.margin_call else "",
        loan.valued_on,
        loan.past_maturity_on or "",
        loan.defaulted_on or "",
        loan.closed_on or "",
        clock.local_iso(loan.registered_at) if loan.registered_at else "",
        loan.kind,
        loan.external_registration_reference,
        loan.day_count,
        fen_to_str(loan_interest_fen(loan, clock.trading_day()))
        if loan.status in (PledgeStatus.REGISTERED, PledgeStatus.DEFAULTED)
        else "",
        len(loan.margin_calls.all()),
        *(
            [
                e.method,
                e.status,
                fen_to_str(e.amount_due_fen),
                fen_to_str(e.received_by_lender_fen),
                e.units_released,
                fen_to_str(e.surplus_fen),
            ]
            if (e := loan.enforcement) is not None
            else [""] * 6
        ),
    ]


class _PledgeListBase(ActorMixin, generics.ListAPIView):
    serializer_class = PledgeOut
    filterset_class = PledgeFilter
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CsvRenderer]
    csv_name = "pledges"

    def pledges(self) -> QuerySet[PledgeLoan]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[PledgeLoan]:
        if getattr(self, "swagger_fake_view", False):
            return PledgeLoan.objects.none()
        return self.pledges()

    def get(  # type: ignore[override]  # DRF returns any HttpResponse a handler makes; the stubs say Response
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response | HttpResponseBase:
        if request.accepted_renderer.format == "csv":
            rows = (_csv_row(loan) for loan in self.filter_queryset(self.get_queryset()).iterator(chunk_size=500))
            return csv_response(f"{self.csv_name}.csv", CSV_HEADER, rows)
        return super().get(request, *args, **kwargs)


CSV_PARAMETER = OpenApiParameter("format", str, enum=["json", "csv"], required=False, description="csv: every row.")


class PledgeRequestIn(serializers.Serializer):
    account = serializers.CharField(max_length=32, help_text=_("Your holding account with the units."))
    lender = IdField(help_text=_("Participant id of the lending financial institution."))
    asset = AssetField(required=False, help_text=_("The units pledged (or name a project for future CCER)."))
    project = serializers.CharField(
        max_length=64, required=False, help_text=_("Future CCER: the registered project's code.")
    )
    vintage = serializers.IntegerField(min_value=2000, max_value=2100, required=False, help_text=_("Future CCER."))
    price = MoneyField(min_fen=1, required=False, help_text=_("Future CCER: the value a tonne agreed with the lender."))
    quantity = QuantityField()
    serials = SerialRangeField(required=False, help_text=_("Pledge exactly this range [first, last]."))
    principal = MoneyField(min_fen=1)
    annual_rate_bp = serializers.IntegerField(min_value=0, max_value=10000, help_text=_("385 = 3.85% a year."))
    start = serializers.DateField(required=False, help_text=_("Interest accrues from this day; default today."))
    maturity = serializers.DateField()
    ltv_limit_bp = serializers.IntegerField(min_value=1, max_value=10000)
    margin_call_bp = serializers.IntegerField(min_value=1, max_value=10000)
    liquidation_bp = serializers.IntegerField(min_value=1, max_value=10000)
    cure_period_days = serializers.IntegerField(min_value=0, max_value=MAX_CURE_DAYS, default=DEFAULT_CURE_DAYS)
    day_count = serializers.ChoiceField(
        choices=DayCount.choices,
        default=DayCount.ACT_360,
        help_text=_("act/360 (CNY practice, the default) or act/365."),
    )


class PledgeListApi(_PledgeListBase):
    """Pledges you are party to (overseers: all); a borrower requests a new pledge loan with POST."""

    def pledges(self) -> QuerySet[PledgeLoan]:
        return pledges_visible_to(self.actor)

    @extend_schema(parameters=[CSV_PARAMETER])
    def get(  # type: ignore[override]  # as _PledgeListBase.get
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response | HttpResponseBase:
        return super().get(request, *args, **kwargs)

    @idempotent_request
    @extend_schema(
        request=PledgeRequestIn,
        responses={201: PledgeOut},
        parameters=[IDEMPOTENCY_PARAMETER],
        operation_id="pledges_request",
    )
    def post(self, request: Request) -> Response:
        v = self.validated_input(PledgeRequestIn)
        future = {"project", "vintage", "price"} & set(v)
        if ("asset" in v) == bool(future) or (future and future != {"project", "vintage", "price"}):
            # A rule across fields, not the body's shape: the pledge's terms name one object.
            raise InvalidPledgeTerms(
                gettext("Name the asset pledged, or the project, vintage and price of future CCER."),
                details={"asset": gettext("The asset, or project, vintage and price.")},
            )
        lender = Participant.objects.filter(pk=v["lender"]).first()
        if lender is None:
            raise InvalidLender(gettext("No such participant."), details={"lender": v["lender"]})
        if "project" in v:
            project = Project.objects.filter(code=v["project"]).first()
            if project is None:
                raise ProjectNotFound(details={"project": v["project"]})
            loan = pledge_request_future(
                actor=self.actor,
                account=account_owned(self.actor, v["account"]),
                lender=lender,
                project=project,
                vintage=v["vintage"],
                price_fen=v["price"],
                quantity=v["quantity"],
                principal_fen=v["principal"],
                annual_rate_bp=v["annual_rate_bp"],
                start_date=v.get("start"),
                maturity_date=v["maturity"],
                ltv_limit_bp=v["ltv_limit_bp"],
                margin_call_bp=v["margin_call_bp"],
                liquidation_bp=v["liquidation_bp"],
                cure_period_days=v["cure_period_days"],
                day_count=v["day_count"],
            )
            return Response(PledgeOut(pledge_by_pk(loan.pk)).data, status=status.HTTP_201_CREATED)
        loan = pledge_request(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            lender=lender,
            asset=v["asset"],
            quantity=v["quantity"],
            serials=v.get("serials"),
            principal_fen=v["principal"],
            annual_rate_bp=v["annual_rate_bp"],
            start_date=v.get("start"),
            maturity_date=v["maturity"],
            ltv_limit_bp=v["ltv_limit_bp"],
            margin_call_bp=v["margin_call_bp"],
            liquidation_bp=v["liquidation_bp"],
            cure_period_days=v["cure_period_days"],
            day_count=v["day_count"],
        )
        return Response(PledgeOut(pledge_by_pk(loan.pk)).data, status=status.HTTP_201_CREATED)


class LoanBookApi(_PledgeListBase):
    """The lender's loan book: every pledge addressed to your bank, with its latest LTV.

    Filter by ``status``, ``ltv_band`` (healthy, margin_call, liquidation: relative to each loan's
    levels) or ``ltv_min_bp``/``ltv_max_bp``, and ``maturity_after``/``maturity_before``.
    """

    permission_classes = [LenderOnlyReads]
    csv_name = "loan-book"

    def pledges(self) -> QuerySet[PledgeLoan]:
        return loan_book(self.actor)

    @extend_schema(parameters=[CSV_PARAMETER])
    def get(  # type: ignore[override]  # as _PledgeListBase.get
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response | HttpResponseBase:
        return super().get(request, *args, **kwargs)


class PledgeRegisterApi(_PledgeListBase):
    """The registry's pledge register: every registered pledge (current and past) with its serials."""

    permission_classes = [OverseersOnlyReads]
    csv_name = "pledge-register"

    def pledges(self) -> QuerySet[PledgeLoan]:
        return registered_pledges()

    @extend_schema(parameters=[CSV_PARAMETER])
    def get(  # type: ignore[override]  # as _PledgeListBase.get
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response | HttpResponseBase:
        return super().get(request, *args, **kwargs)


class PledgeDetailApi(ActorMixin, APIView):
    @extend_schema(responses=PledgeOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(PledgeOut(pledge_visible(self.actor, pk)).data)


class PledgeValuationListApi(ActorMixin, generics.ListAPIView):
    """The pledge's daily valuations at the close, newest first."""

    serializer_class = ValuationOut

    def get_queryset(self) -> QuerySet[PledgeValuation]:
        if getattr(self, "swagger_fake_view", False):
            return PledgeValuation.objects.none()
        return valuations_of(pledge_visible(self.actor, self.kwargs["pk"]))


# --- the steps ---------------------------------------------------------------------------------------------
class _PledgeStepApi(ActorMixin, APIView):
    """POST a step on one pledge you may see: parse, call the one service, answer the pledge."""

    input_class: type[serializers.Serializer] | None = None

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        loan = pledge_visible(self.actor, pk)
        data: dict[str, Any] = {}
        if self.input_class is not None:
            data = self.validated_input(self.input_class)
        self.step(loan, data)
        return Response(PledgeOut(pledge_by_pk(loan.pk)).data)


class PledgeAcceptIn(serializers.Serializer):
    terms_digest = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", help_text=_("The pledge's terms_digest: you confirm exactly the terms applied for.")
    )
    lender_account = serializers.CharField(
        max_length=32, required=False, help_text=_("Your account for enforced units and proceeds; default your first.")
    )


class PledgeAcceptApi(_PledgeStepApi):
    """The lender confirms the terms the borrower applied with: the joint application goes to the registry,
    which registers the pledge (nothing is frozen before registration)."""

    # The refusals it answers beyond those of every operation of its kind (OpenAPI x-error-codes).
    error_codes = [
        "pledge_lender_only",
        "invalid_pledge_transition",
        "collateral_not_priced",
        "ltv_limit_exceeded",
        "insufficient_available",
        "serials_not_available",
        "account_not_found",
        "participant_suspended",
        "role_forbidden",
        "wrong_participant_kind",
    ]

    input_class = PledgeAcceptIn

    @idempotent_request
    @extend_schema(request=PledgeAcceptIn, responses=PledgeOut, operation_id="pledges_accept")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        account = account_owned(self.actor, data["lender_account"]) if data.get("lender_account") else None
        return pledge_confirm(actor=self.actor, loan=loan, terms_digest=data["terms_digest"], lender_account=account)


class PledgeRegistrationApi(ActorMixin, APIView):
    """The registry registers a joint application: the serial blocks are frozen and the pledge gets its
    registration number. Above the four-eyes threshold the answer is 202 with an approval request that a
    second registry user approves (``POST /approvals/{id}/approve``)."""

    @idempotent_request
    @extend_schema(request=None, responses={200: PledgeOut, 202: PENDING_OUT}, operation_id="pledges_register")
    def post(self, request: Request, pk: int) -> Response:
        loan = pledge_visible(self.actor, pk)
        result = pledge_register_or_file(actor=self.actor, loan=loan)
        if isinstance(result, ApprovalRequest):
            return pending_response(result)
        return Response(PledgeOut(pledge_by_pk(loan.pk)).data)


class ExternalRegistrationIn(serializers.Serializer):
    reference = serializers.CharField(
        max_length=64, help_text=_("The registration number in the movable-property financing registration system.")
    )


class PledgeExternalRegistrationApi(_PledgeStepApi):
    """The lender records where it also registered the pledge (动产融资统一登记公示系统)."""

    input_class = ExternalRegistrationIn

    @idempotent_request
    @extend_schema(request=ExternalRegistrationIn, responses=PledgeOut, operation_id="pledges_external_registration")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_external_reference_record(actor=self.actor, loan=loan, reference=data["reference"])


class RejectIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class PledgeRejectApi(_PledgeStepApi):
    """The lender turns a request down."""

    input_class = RejectIn

    @idempotent_request
    @extend_schema(request=RejectIn, responses=PledgeOut, operation_id="pledges_reject")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_reject(actor=self.actor, loan=loan, reason=data["reason"])


class PledgeWithdrawApi(_PledgeStepApi):
    """The borrower takes back a request the lender has not registered yet."""

    @idempotent_request
    @extend_schema(request=None, responses=PledgeOut, operation_id="pledges_withdraw")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_withdraw(actor=self.actor, loan=loan)


class ReleaseIn(serializers.Serializer):
    repayment_reference = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class PledgeReleaseApi(_PledgeStepApi):
    """The lender records the repayment and releases the pledge: the units are available again."""

    input_class = ReleaseIn

    @idempotent_request
    @extend_schema(request=ReleaseIn, responses=PledgeOut, operation_id="pledges_release")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_release(actor=self.actor, loan=loan, repayment_reference=data["repayment_reference"])


class PledgeDefaultApi(_PledgeStepApi):
    """The lender declares default: after maturity, a missed margin call, or at the liquidation level."""

    @idempotent_request
    @extend_schema(request=None, responses=PledgeOut, operation_id="pledges_default")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_default(actor=self.actor, loan=loan)


class EnforceIn(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=[(EnforcementMethod.AGREEMENT, "agreement"), (EnforcementMethod.SALE, "sale")],
        help_text=_("agreement: propose a value a tonne for the borrower to agree; sale: sell on the exchange."),
    )
    price = MoneyField(
        min_fen=1,
        help_text=_('agreement: the value a tonne (within the valuation band); sale: the limit price, e.g. "72.00".'),
    )
    costs = MoneyField(min_fen=0, required=False, default=0, help_text=_("The lender's costs of enforcement."))


class PledgeEnforceApi(_PledgeStepApi):
    """The lender enforces a defaulted pledge (Civil Code arts. 436-438): propose a valuation
    (``agreement``; nothing moves until the borrower agrees) or sell the units on the exchange (``sale``:
    the lender is paid first from the settled proceeds, up to the debt; the surplus is the borrower's)."""

    input_class = EnforceIn

    @idempotent_request
    @extend_schema(request=EnforceIn, responses=PledgeOut, operation_id="pledges_enforce")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_enforce(
            actor=self.actor, loan=loan, method=data["method"], price_fen=data["price"], costs_fen=data["costs"]
        )


class PledgeEnforcementAgreeApi(_PledgeStepApi):
    """The borrower agrees the lender's valuation: units up to the debt go to the lender, the rest are released."""

    @idempotent_request
    @extend_schema(request=None, responses=PledgeOut, operation_id="pledges_enforce_agree")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_enforcement_agree(actor=self.actor, loan=loan)


class PledgeEnforcementDeclineApi(_PledgeStepApi):
    """The borrower declines the lender's valuation; nothing moves."""

    @idempotent_request
    @extend_schema(request=None, responses=PledgeOut, operation_id="pledges_enforce_decline")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_enforcement_decline(actor=self.actor, loan=loan)


class CourtOrderIn(serializers.Serializer):
    court_reference = serializers.CharField(max_length=100)
    document_sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text=_("SHA-256 of the order's document, hex."))
    units_to_lender = serializers.IntegerField(min_value=0, max_value=10**12)
    price = MoneyField(min_fen=1, help_text=_("The value a tonne the order states."))
    costs = MoneyField(min_fen=0, required=False, default=0)


class PledgeCourtOrderApi(_PledgeStepApi):
    """The registry executes a court order on a pledge: the units it names to the lender at the value it
    states (never more than the debt), the rest released."""

    input_class = CourtOrderIn

    @idempotent_request
    @extend_schema(request=CourtOrderIn, responses=PledgeOut, operation_id="pledges_court_order")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_enforce_court_order(
            actor=self.actor,
            loan=loan,
            court_reference=data["court_reference"],
            document_sha256=data["document_sha256"],
            units_to_lender=data["units_to_lender"],
            price_fen=data["price"],
            costs_fen=data["costs"],
        )


# --- release for compliance ------------------------------------------------------------------------------
class ComplianceReleaseIn(serializers.Serializer):
    quantity = QuantityField(help_text=_("Pledged units to surrender."))
    year = serializers.IntegerField(min_value=2000, max_value=2100, help_text=_("The compliance year."))
    substitute_quantity = serializers.IntegerField(
        min_value=0, max_value=10**12, default=0, help_text=_("Other units of the asset to pledge in their place.")
    )
    substitute_cash = MoneyField(
        min_fen=0,
        required=False,
        default=0,
        help_text=_('Cash of yours to hold under the pledge in their place, "8000.00".'),
    )


class PledgeComplianceReleaseApi(_PledgeStepApi):
    """The borrower asks the lender to release pledged units into its surrender for a compliance year."""

    input_class = ComplianceReleaseIn

    @idempotent_request
    @extend_schema(request=ComplianceReleaseIn, responses=PledgeOut, operation_id="pledges_compliance_release")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_compliance_release_request(
            actor=self.actor,
            loan=loan,
            quantity=data["quantity"],
            year=data["year"],
            substitute_quantity=data["substitute_quantity"],
            substitute_cash_fen=data["substitute_cash"],
        )


class ComplianceDecisionIn(serializers.Serializer):
    consent = serializers.BooleanField()
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class PledgeComplianceDecisionApi(_PledgeStepApi):
    """The lender consents (the units leave the pledge into the surrender, in one transaction) or refuses."""

    input_class = ComplianceDecisionIn

    @idempotent_request
    @extend_schema(request=ComplianceDecisionIn, responses=PledgeOut, operation_id="pledges_compliance_decide")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, loan: PledgeLoan, data: dict[str, Any]) -> Any:
        return pledge_compliance_release_decide(
            actor=self.actor, loan=loan, consent=data["consent"], reason=data["reason"]
        )


# --- the lender's exposure --------------------------------------------------------------------------------
ExposureReads = KindRequired(
    ParticipantKind.FINANCIAL_INSTITUTION,
    ParticipantKind.REGISTRY,
    ParticipantKind.EXCHANGE,
    ParticipantKind.AUDITOR,
    for_reads=True,
)


class ExposureOut(serializers.Serializer):
    lender_id = serializers.IntegerField()
    lender = serializers.CharField()
    loans = serializers.IntegerField(help_text=_("Open loans: registered or in default."))
    principal = MoneyField(source="principal_fen")
    collateral_value = MoneyField(source="collateral_value_fen")
    cash_collateral = MoneyField(
        source="cash_collateral_fen", help_text=_("Of the value, cash held under the pledges.")
    )
    ltv_bp = serializers.IntegerField(allow_null=True, help_text=_("Summed principal over summed value, rounded up."))
    margin_calls_open = serializers.IntegerField()
    defaulted = serializers.IntegerField()
    received_on_enforcement = MoneyField(source="received_on_enforcement_fen")


EXPOSURE_HEADER = list(ExposureOut().fields)


class PledgeExposureApi(ActorMixin, APIView):
    """The pledge register's totals: a bank's exposure summed over its open loans (overseers: every
    lender's). ``?format=csv`` for a spreadsheet."""

    permission_classes = [ExposureReads]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CsvRenderer]

    @extend_schema(responses=ExposureOut(many=True), parameters=[CSV_PARAMETER])
    def get(self, request: Request) -> Response | HttpResponseBase:
        if request.query_params.get("format", "json") not in ("json", "csv"):
            raise InvalidInput(gettext("format is json or csv."), details={"format": [gettext("json or csv.")]})
        lender = None if self.actor.sees_everything else self.actor.participant_id
        rows = ExposureOut(exposures(lender), many=True).data
        if request.accepted_renderer.format == "csv":
            return csv_response("pledge-exposure.csv", EXPOSURE_HEADER, ([r[k] for k in EXPOSURE_HEADER] for r in rows))
        return Response(rows)
