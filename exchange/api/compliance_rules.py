"""The compliance rules and cures on the API: allocation rules per sector (versions), an entity's benchmark
inputs, the final allocation run, deductions (等量核减), conservative determination of emissions, carryover
rules and an entity's carryover limit, the official monthly prices.

The registry writes them; everyone reads the rules; an entity reads its own carryover limit (another
entity's is answered as not found). Every POST takes an Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import ParticipantNotFound
from accounts.models import Participant, ParticipantKind
from accounts.permissions import KindRequired
from core.limits import MAX_QUANTITY
from exchange.api.approvals import PENDING_OUT, pending_response
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.compliance import AllocationEntryOut, EmissionOut, _obligation_visible, _year
from exchange.api.fields import MoneyField, QuantityField, int_parameter_schema, query_int
from exchange.api.idempotency import idempotent_request
from exchange.models import (
    AllocationDeduction,
    AllocationInput,
    AllocationMethod,
    AllocationRule,
    AllocationStage,
    ApprovalOperation,
    ApprovalRequest,
    CarryoverRule,
    OfficialPrice,
)
from exchange.models.compliance_rules import PPM
from exchange.selectors.compliance import sees_all_obligations
from exchange.selectors.compliance_rules import carryover_limit, carryover_rule_in_force
from exchange.services.allocation import (
    allocation_final_run,
    allocation_input_record,
    allocation_rule_set,
    deduction_decide,
)
from exchange.services.approval_summaries import final_allocation_summary
from exchange.services.approvals import gated
from exchange.services.compliance_rules import carryover_rule_set, official_price_set
from exchange.services.obligations import RuleNotFound, emissions_determine

RegistryOnly = KindRequired(ParticipantKind.REGISTRY)
SECTOR_PATTERN = r"^[A-Za-z0-9_-]{0,32}$"
YEAR_RANGE = {"minimum": 2000, "maximum": 2100}


@extend_schema_field({"type": "string", "pattern": r"^\d{1,4}(\.\d{1,6})?$", "example": "0.8218"})
class PpmField(serializers.Field):
    """A decimal string with at most six places (e.g. "0.8218"), held as integer millionths."""

    default_error_messages = {"invalid": 'A decimal string with at most six places, e.g. "0.8218".'}

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = Decimal(data)
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite() or value < 0 or value >= 10000 or value.as_tuple().exponent < -6:  # type: ignore[operator]
            self.fail("invalid")
        return int(value * PPM)

    def to_representation(self, value: int) -> str:
        return str((Decimal(value) / PPM).normalize())


class TextField(serializers.CharField):
    """Text, and only text: a number or a boolean where the schema says string is refused, not turned into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _ppm(value: int | None) -> str | None:
    return None if value is None else PpmField().to_representation(value)


# --- allocation rules ------------------------------------------------------------------------------------
class AllocationRuleIn(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2100)
    sector = serializers.RegexField(
        SECTOR_PATTERN, max_length=32, allow_blank=True, default="", help_text=_("Blank: any other sector.")
    )
    stage = serializers.ChoiceField(choices=AllocationStage.choices)
    method = serializers.ChoiceField(choices=AllocationMethod.choices)
    share_bp = serializers.IntegerField(min_value=0, max_value=10000, default=10000)
    benchmark = PpmField(required=False, help_text=_('tCO2 per output unit, e.g. "0.8218" (benchmark method).'))
    heat_benchmark = PpmField(required=False, help_text=_("tCO2 per GJ of heat supplied."))
    output_unit = TextField(max_length=16, allow_blank=True, default="")
    factors = serializers.ListField(
        child=serializers.RegexField(r"^[A-Za-z0-9_-]{1,32}$", max_length=32),
        default=list,
        max_length=20,
        help_text=_("Correction factors the input gives."),
    )
    effective_from = serializers.DateField()
    source = TextField(max_length=300, help_text=_("The plan or notice, with its article."))  # type: ignore[assignment]  # a declared field, not Field.source: the DRF stubs cannot tell


class AllocationRuleOut(serializers.ModelSerializer):
    benchmark = serializers.SerializerMethodField()
    heat_benchmark = serializers.SerializerMethodField()

    class Meta:
        model = AllocationRule
        fields = [
            "id",
            "year",
            "sector",
            "stage",
            "method",
            "share_bp",
            "benchmark",
            "heat_benchmark",
            "output_unit",
            "factors",
            "effective_from",
            "version",
            "source",
            "actor_label",
            "created_at",
        ]

    def get_benchmark(self, rule: AllocationRule) -> str | None:
        return _ppm(rule.benchmark_ppm)

    def get_heat_benchmark(self, rule: AllocationRule) -> str | None:
        return _ppm(rule.heat_benchmark_ppm)


YEAR_QUERY = OpenApiParameter("year", int_parameter_schema(**YEAR_RANGE), required=False, description="Only this year.")


class AllocationRuleListApi(ActorMixin, generics.ListAPIView):
    """Every version of the allocation rules (``?year=``); the registry enters a new version."""

    serializer_class = AllocationRuleOut

    def get_queryset(self) -> QuerySet[AllocationRule]:
        queryset = AllocationRule.objects.order_by("-year", "sector", "stage", "-version")
        if getattr(self, "swagger_fake_view", False):
            return queryset
        year = query_int(self.request, "year", **YEAR_RANGE)
        return queryset if year is None else queryset.filter(year=year)

    @extend_schema(parameters=[YEAR_QUERY])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_permissions(self) -> Sequence[Any]:
        return [RegistryOnly()] if self.request.method == "POST" else super().get_permissions()

    @idempotent_request
    @extend_schema(
        request=AllocationRuleIn, responses={201: AllocationRuleOut}, operation_id="compliance_allocation_rule_set"
    )
    def post(self, request: Request) -> Response:
        data = AllocationRuleIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rule = allocation_rule_set(
            actor=self.actor,
            year=v["year"],
            sector=v["sector"],
            stage=v["stage"],
            method=v["method"],
            share_bp=v["share_bp"],
            benchmark_ppm=v.get("benchmark"),
            heat_benchmark_ppm=v.get("heat_benchmark"),
            output_unit=v["output_unit"],
            factors=v["factors"],
            effective_from=v["effective_from"],
            source=v["source"],
        )
        return Response(AllocationRuleOut(rule).data, status=status.HTTP_201_CREATED)


class AllocationInputIn(serializers.Serializer):
    output = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY, help_text=_("Output in the rule's unit."))
    heat_output = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY, default=0, help_text=_("GJ."))
    factors = serializers.DictField(child=PpmField(), default=dict, help_text=_('By name, e.g. {"cooling": "0.99"}.'))
    reference = TextField(max_length=100, allow_blank=True, default="")


class AllocationInputOut(serializers.ModelSerializer):
    obligation = serializers.IntegerField(source="obligation_id")
    factors = serializers.SerializerMethodField()

    class Meta:
        model = AllocationInput
        fields = ["id", "obligation", "version", "output", "heat_output", "factors", "reference", "created_at"]

    def get_factors(self, data: AllocationInput) -> dict[str, str]:
        return {name: _ppm(value) or "0" for name, value in (data.factors or {}).items()}


class AllocationInputApi(ActorMixin, APIView):
    """Record the entity's output, heat and correction factors for a benchmark allocation (registry or
    verifier); a correction is the next version."""

    permission_classes = [KindRequired(ParticipantKind.REGISTRY, ParticipantKind.VERIFIER)]

    @idempotent_request
    @extend_schema(request=AllocationInputIn, responses={201: AllocationInputOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request, pk: int) -> Response:
        obligation = _obligation_visible(self.actor, pk)
        data = AllocationInputIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        record = allocation_input_record(
            actor=self.actor,
            obligation=obligation,
            output=v["output"],
            heat_output=v["heat_output"],
            factors=v["factors"],
            reference=v["reference"],
        )
        return Response(AllocationInputOut(record).data, status=status.HTTP_201_CREATED)


class FinalAllocationApi(ActorMixin, APIView):
    """Run the year's final allocation by each sector's final rule in force (registry): true up every entity,
    less any deduction decided for the year. Above the four-eyes threshold it waits for approval (202)."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(
        request=None,
        responses={200: AllocationEntryOut(many=True), 202: PENDING_OUT},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, year: int) -> Response:
        found = _year(year)
        today = timezone.localdate()
        result = gated(
            actor=self.actor,
            operation=ApprovalOperation.FINAL_ALLOCATION,
            params={"year": found.pk, "today": today.isoformat()},
            summary=final_allocation_summary(found.pk),
            call=lambda: allocation_final_run(actor=self.actor, year=found, today=today),
        )
        if isinstance(result, ApprovalRequest):
            return pending_response(result)
        return Response(
            {
                "year": result.year,
                "entries": AllocationEntryOut(result.entries, many=True).data,
                "skipped": result.skipped,
            }
        )


# --- deductions and conservative determination -----------------------------------------------------------
class DeductionIn(serializers.Serializer):
    quantity = QuantityField(required=False, help_text=_("Default: what is still unsurrendered."))
    reason = TextField(max_length=500, allow_blank=True, default="")


class DeductionOut(serializers.ModelSerializer):
    obligation = serializers.IntegerField(source="obligation_id")
    applied_entry = serializers.IntegerField(source="applied_entry_id", allow_null=True)

    class Meta:
        model = AllocationDeduction
        fields = ["id", "obligation", "target_year", "quantity", "reason", "created_at", "applied_entry", "applied_at"]


class DeductionApi(ActorMixin, APIView):
    """Decide to deduct a short obligation's unsurrendered shortfall from the entity's next-year allocation
    (registry; Decree 775 art. 24). Applied when that allocation runs."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=DeductionIn, responses={201: DeductionOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request, pk: int) -> Response:
        obligation = _obligation_visible(self.actor, pk)
        data = DeductionIn(data=request.data)
        data.is_valid(raise_exception=True)
        deduction = deduction_decide(
            actor=self.actor,
            obligation=obligation,
            quantity=data.validated_data.get("quantity"),
            reason=data.validated_data["reason"],
        )
        return Response(DeductionOut(deduction).data, status=status.HTTP_201_CREATED)


class DeterminationIn(serializers.Serializer):
    quantity = QuantityField(min_value=0, help_text=_("The emissions the authority determines, tCO2e."))
    basis = TextField(max_length=500, help_text=_("How it was determined (conservatively)."))


class DeterminationApi(ActorMixin, APIView):
    """Enter the emissions determined conservatively for an entity with none verified after the year's
    emissions date (registry); recorded as an emission version flagged ``conservative``."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=DeterminationIn, responses={201: EmissionOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request, pk: int) -> Response:
        obligation = _obligation_visible(self.actor, pk)
        data = DeterminationIn(data=request.data)
        data.is_valid(raise_exception=True)
        emission = emissions_determine(
            actor=self.actor,
            obligation=obligation,
            quantity=data.validated_data["quantity"],
            basis=data.validated_data["basis"],
        )
        return Response(EmissionOut(emission).data, status=status.HTTP_201_CREATED)


# --- carryover -------------------------------------------------------------------------------------------
class CarryoverRuleIn(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2100, help_text=_("The last vintage carried over."))
    first_vintage = serializers.IntegerField(min_value=2000, max_value=2100)
    base_tonnes = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY)
    net_sales_multiple_bp = serializers.IntegerField(min_value=0, max_value=1_000_000)
    sales_from = serializers.DateField()
    sales_to = serializers.DateField()
    enforced = serializers.BooleanField(default=True)
    timely_compliance_required = serializers.BooleanField(default=True)
    effective_from = serializers.DateField()
    source = TextField(max_length=300)  # type: ignore[assignment]  # a declared field, not Field.source: the DRF stubs cannot tell


class CarryoverRuleOut(serializers.ModelSerializer):
    class Meta:
        model = CarryoverRule
        fields = [
            "id",
            "year",
            "first_vintage",
            "base_tonnes",
            "net_sales_multiple_bp",
            "sales_from",
            "sales_to",
            "enforced",
            "timely_compliance_required",
            "effective_from",
            "version",
            "source",
            "actor_label",
            "created_at",
        ]


class CarryoverRuleListApi(ActorMixin, generics.ListAPIView):
    """Every version of the carryover rules; the registry enters a new version."""

    serializer_class = CarryoverRuleOut
    queryset = CarryoverRule.objects.order_by("-year", "-version")

    def get_permissions(self) -> Sequence[Any]:
        return [RegistryOnly()] if self.request.method == "POST" else super().get_permissions()

    @idempotent_request
    @extend_schema(
        request=CarryoverRuleIn, responses={201: CarryoverRuleOut}, operation_id="compliance_carryover_rule_set"
    )
    def post(self, request: Request) -> Response:
        data = CarryoverRuleIn(data=request.data)
        data.is_valid(raise_exception=True)
        rule = carryover_rule_set(actor=self.actor, **data.validated_data)
        return Response(CarryoverRuleOut(rule).data, status=status.HTTP_201_CREATED)


class CarryoverLimitOut(serializers.Serializer):
    entity = serializers.IntegerField()
    rule = CarryoverRuleOut()
    sold = serializers.IntegerField(help_text=_("Sold on the tape in the window, t."))
    bought = serializers.IntegerField(help_text=_("Bought on the tape in the window, t."))
    net_sales = serializers.IntegerField()
    eligible = serializers.BooleanField(help_text=_("False when the entity did not complete the plan's years on time."))
    limit = serializers.IntegerField()
    used = serializers.IntegerField(help_text=_("Already surrendered for later years, t."))
    remaining = serializers.IntegerField()


def carryover_payload(entity_id: int, plan_year: int) -> dict[str, Any]:
    rule = carryover_rule_in_force(plan_year, timezone.localdate())
    if rule is None:
        raise RuleNotFound(details={"year": plan_year})
    limit = carryover_limit(entity_id, rule)
    return {
        "entity": entity_id,
        "rule": CarryoverRuleOut(rule).data,
        "sold": limit.sold,
        "bought": limit.bought,
        "net_sales": limit.net_sales,
        "eligible": limit.eligible,
        "limit": limit.limit,
        "used": limit.used,
        "remaining": limit.remaining,
    }


class CarryoverLimitApi(ActorMixin, APIView):
    """An entity's carryover limit under the plan year's rule in force: base + multiple x its net sales of
    the rule's vintages on the trade tape, and what it has carried over so far."""

    @extend_schema(
        responses=CarryoverLimitOut,
        parameters=[
            OpenApiParameter("year", int_parameter_schema(**YEAR_RANGE), required=True, description="Plan year.")
        ],
    )
    def get(self, request: Request, participant: int) -> Response:
        entity = Participant.objects.filter(pk=participant).first()
        if entity is None or not (sees_all_obligations(self.actor) or self.actor.owns(entity.pk)):
            raise ParticipantNotFound(details={"participant": participant})
        year = query_int(request, "year", **YEAR_RANGE)
        if year is None:
            raise serializers.ValidationError({"year": ["Name the plan year, e.g. ?year=2024."]})
        return Response(carryover_payload(entity.pk, year))


# --- official prices -------------------------------------------------------------------------------------
class OfficialPriceIn(serializers.Serializer):
    market = TextField(max_length=16, default="CN-ETS")
    month = serializers.DateField(help_text=_("Any day of the month."))
    price = MoneyField(min_fen=1, help_text=_("Yuan per tonne."))
    source = TextField(max_length=300)  # type: ignore[assignment]  # a declared field, not Field.source: the DRF stubs cannot tell


class OfficialPriceOut(serializers.ModelSerializer):
    price = serializers.SerializerMethodField()

    class Meta:
        model = OfficialPrice
        fields = ["id", "market", "month", "price", "version", "source", "actor_label", "created_at"]

    def get_price(self, price: OfficialPrice) -> str:
        return MoneyField().to_representation(price.price_fen)


class OfficialPriceListApi(ActorMixin, generics.ListAPIView):
    """The official monthly prices (every version); the registry enters them for the authority."""

    serializer_class = OfficialPriceOut
    queryset = OfficialPrice.objects.order_by("market", "-month", "-version")

    def get_permissions(self) -> Sequence[Any]:
        return [RegistryOnly()] if self.request.method == "POST" else super().get_permissions()

    @idempotent_request
    @extend_schema(
        request=OfficialPriceIn, responses={201: OfficialPriceOut}, operation_id="compliance_official_price_set"
    )
    def post(self, request: Request) -> Response:
        data = OfficialPriceIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        price = official_price_set(
            actor=self.actor, market=v["market"], month=v["month"], price_fen=v["price"], source=v["source"]
        )
        return Response(OfficialPriceOut(price).data, status=status.HTTP_201_CREATED)
