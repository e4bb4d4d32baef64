"""The compliance cycle on the API: years and covered entities, verified emissions, allocation,
surrenders, obligations (JSON or CSV), an entity's compliance statement, and the assessment.

Entities see their own obligations, surrenders and statement; the registry, the exchange, auditors and
verifiers see every entity's. Another entity's account or statement is answered as not found.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponseBase
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import ParticipantNotFound
from accounts.models import Participant, ParticipantKind
from accounts.permissions import KindRequired
from core import clock
from core.limits import MAX_QUANTITY
from exchange.api.approvals import PENDING_OUT, pending_response
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin, CsvRenderer, csv_response
from exchange.api.fields import (
    AssetField,
    ChoiceFilter,
    IdField,
    IdFilter,
    QuantityField,
    fen_to_str,
    int_parameter_schema,
    query_int,
)
from exchange.api.idempotency import idempotent_request
from exchange.api.representations import ParticipantRefOut, transaction_payload
from exchange.models import (
    AllocationEntry,
    ApprovalOperation,
    ApprovalRequest,
    ComplianceYear,
    Obligation,
    ObligationStatus,
    Posting,
    SerialMovement,
    Surrender,
    VerifiedEmission,
)
from exchange.selectors.accounts import account_owned
from exchange.selectors.compliance import (
    ccer_limit,
    compliance_statement_lines,
    obligations_visible_to,
    remaining,
    sees_all_obligations,
    year_summary,
)
from exchange.selectors.compliance_rules import carryover_plan_years
from exchange.services.approval_summaries import preallocation_summary, true_up_summary
from exchange.services.approvals import gated
from exchange.services.compliance import (
    DEFAULT_CCER_LIMIT_BP,
    DEFAULT_PREALLOCATION_BP,
    ComplianceYearNotFound,
    ObligationNotFound,
    SurrenderLine,
    allocation_true_up,
    compliance_assess,
    compliance_year_create,
    compliance_year_update,
    emissions_record,
    entities_cover,
    preallocation_run,
    surrender_create,
)

RegistryOnly = KindRequired(ParticipantKind.REGISTRY)


def _money(fen: int | None) -> str | None:
    return None if fen is None else fen_to_str(fen)


def _year(year: int) -> ComplianceYear:
    found = ComplianceYear.objects.filter(pk=year).first()
    if found is None:
        raise ComplianceYearNotFound(details={"year": year})
    return found


# --- years -----------------------------------------------------------------------------------------------
class YearIn(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2100)
    deadline = serializers.DateField(required=False, help_text=_("Default: 31 December of the following year."))
    preallocation_bp = serializers.IntegerField(min_value=0, max_value=10000, default=DEFAULT_PREALLOCATION_BP)
    ccer_limit_bp = serializers.IntegerField(min_value=0, max_value=10000, default=DEFAULT_CCER_LIMIT_BP)


class YearUpdateIn(serializers.Serializer):
    deadline = serializers.DateField(required=False)
    preallocation_bp = serializers.IntegerField(min_value=0, max_value=10000, required=False)
    ccer_limit_bp = serializers.IntegerField(min_value=0, max_value=10000, required=False)


class YearOut(serializers.ModelSerializer):
    class Meta:
        model = ComplianceYear
        fields = ["year", "deadline", "preallocation_bp", "ccer_limit_bp", "closed_at", "created_at"]


class YearSummaryOut(serializers.Serializer):
    entities = serializers.IntegerField()
    verified_entities = serializers.IntegerField()
    verified = serializers.IntegerField()
    allocated = serializers.IntegerField()
    surrendered = serializers.IntegerField()
    ccer_surrendered = serializers.IntegerField()
    remaining = serializers.IntegerField()
    short_entities = serializers.IntegerField()
    shortfall = serializers.IntegerField()
    status_counts = serializers.DictField(child=serializers.IntegerField())


class YearDetailOut(YearOut):
    summary = serializers.SerializerMethodField(
        help_text=_("Totals over every entity (null for an entity's own view).")
    )

    class Meta(YearOut.Meta):
        fields = [*YearOut.Meta.fields, "summary"]

    @extend_schema_field(YearSummaryOut(allow_null=True))
    def get_summary(self, year: ComplianceYear) -> dict[str, Any] | None:
        actor = self.context.get("actor")
        if actor is None or not sees_all_obligations(actor):
            return None
        return YearSummaryOut(year_summary(year)).data


class YearListApi(ActorMixin, generics.ListAPIView):
    """Compliance years (everyone reads); the registry opens a new one."""

    serializer_class = YearOut
    permission_classes = [RegistryOnly]
    queryset = ComplianceYear.objects.order_by("-year")
    pagination_class = None

    @idempotent_request
    @extend_schema(request=YearIn, responses={201: YearOut}, operation_id="compliance_years_create")
    def post(self, request: Request) -> Response:
        data = YearIn(data=request.data)
        data.is_valid(raise_exception=True)
        year = compliance_year_create(actor=self.actor, **data.validated_data)
        return Response(YearOut(year).data, status=status.HTTP_201_CREATED)


class YearDetailApi(ActorMixin, APIView):
    """A compliance year with the year at a glance; the registry changes an open year's deadline or shares."""

    permission_classes = [RegistryOnly]

    @extend_schema(responses=YearDetailOut)
    def get(self, request: Request, year: int) -> Response:
        return Response(YearDetailOut(_year(year), context={"actor": self.actor}).data)

    @extend_schema(request=YearUpdateIn, responses=YearDetailOut)
    def patch(self, request: Request, year: int) -> Response:
        data = YearUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        updated = compliance_year_update(actor=self.actor, year=_year(year), **data.validated_data)
        return Response(YearDetailOut(updated, context={"actor": self.actor}).data)


# --- obligations -----------------------------------------------------------------------------------------
class ObligationOut(serializers.ModelSerializer):
    year = serializers.IntegerField(source="year_id")
    entity = ParticipantRefOut()
    account = serializers.CharField(source="account.number")
    verified = serializers.IntegerField(allow_null=True, help_text=_("Latest verified emissions (the obligation), t."))
    verified_version = serializers.IntegerField(allow_null=True)
    allocated = serializers.IntegerField()
    surrendered = serializers.IntegerField()
    ccer_surrendered = serializers.IntegerField()
    remaining = serializers.SerializerMethodField()
    ccer_limit = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField(help_text=_("Average price of the month before the deadline, CNY/t."))
    penalty_min = serializers.SerializerMethodField()
    penalty_max = serializers.SerializerMethodField()
    deduction = serializers.SerializerMethodField(
        help_text=_("Tonnes the registry decided to deduct from the next year's allocation, or null.")
    )

    class Meta:
        model = Obligation
        fields = [
            "id",
            "year",
            "entity",
            "account",
            "status",
            "verified",
            "verified_version",
            "allocated",
            "surrendered",
            "ccer_surrendered",
            "remaining",
            "ccer_limit",
            "shortfall",
            "price",
            "penalty_min",
            "penalty_max",
            "assessed_at",
            "completed_at",
            "sector",
            "deduction",
        ]

    def get_remaining(self, obligation: Obligation) -> int | None:
        return remaining(obligation.verified, obligation.surrendered)  # type: ignore[attr-defined]

    def get_ccer_limit(self, obligation: Obligation) -> int | None:
        verified = obligation.verified  # type: ignore[attr-defined]
        return None if verified is None else ccer_limit(verified, obligation.year.ccer_limit_bp)

    @extend_schema_field({"type": "string", "nullable": True, "example": "60.76"})
    def get_price(self, obligation: Obligation) -> str | None:
        return _money(obligation.price_fen)

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_deduction(self, obligation: Obligation) -> int | None:
        deduction = getattr(obligation, "deduction", None)
        return None if deduction is None else deduction.quantity

    @extend_schema_field({"type": "string", "nullable": True, "example": "11240.60"})
    def get_penalty_min(self, obligation: Obligation) -> str | None:
        return _money(obligation.penalty_min_fen)

    @extend_schema_field({"type": "string", "nullable": True, "example": "22481.20"})
    def get_penalty_max(self, obligation: Obligation) -> str | None:
        return _money(obligation.penalty_max_fen)


class ObligationFilter(filters.FilterSet):
    year = IdFilter(field_name="year_id")
    status = ChoiceFilter(choices=ObligationStatus.choices)
    entity = IdFilter(field_name="entity_id", help_text=_("Participant id of the entity."))

    class Meta:
        model = Obligation
        fields = ["year", "status", "entity"]


OBLIGATION_CSV_HEADER = [
    "year",
    "entity_id",
    "entity",
    "account",
    "status",
    "verified",
    "allocated",
    "surrendered",
    "ccer_surrendered",
    "remaining",
    "shortfall",
    "price",
    "penalty_min",
    "penalty_max",
]


def _obligation_row(o: Any) -> list[Any]:
    left = remaining(o.verified, o.surrendered)
    return [
        o.year_id,
        o.entity_id,
        o.entity.name,
        o.account.number,
        o.status,
        "" if o.verified is None else o.verified,
        o.allocated,
        o.surrendered,
        o.ccer_surrendered,
        "" if left is None else left,
        "" if o.shortfall is None else o.shortfall,
        _money(o.price_fen) or "",
        _money(o.penalty_min_fen) or "",
        _money(o.penalty_max_fen) or "",
    ]


class ObligationListApi(ActorMixin, generics.ListAPIView):
    """Obligations with their figures (entities: their own). ``?format=csv`` streams every matching row."""

    serializer_class = ObligationOut
    filterset_class = ObligationFilter
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CsvRenderer]

    def get_queryset(self) -> QuerySet[Obligation]:
        if getattr(self, "swagger_fake_view", False):
            return Obligation.objects.none()
        return obligations_visible_to(self.actor).order_by("-pk")

    def get(  # type: ignore[override]
        self, request: Request, *args: object, **kwargs: object
    ) -> Response | HttpResponseBase:
        if request.accepted_renderer.format == "csv":
            queryset = self.filter_queryset(self.get_queryset()).order_by("year_id", "entity__name", "pk")
            return csv_response(
                "obligations.csv",
                OBLIGATION_CSV_HEADER,
                (_obligation_row(o) for o in queryset.iterator(chunk_size=500)),
            )
        return super().get(request, *args, **kwargs)


def _obligation_visible(actor: Any, pk: int) -> Obligation:
    obligation = obligations_visible_to(actor).filter(pk=pk).first()
    if obligation is None:
        raise ObligationNotFound(details={"obligation": pk})
    return obligation


class ObligationDetailApi(ActorMixin, APIView):
    @extend_schema(responses=ObligationOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ObligationOut(_obligation_visible(self.actor, pk)).data)


class CoverIn(serializers.Serializer):
    entities = serializers.ListField(
        child=IdField(), allow_empty=False, min_length=1, max_length=10000, help_text=_("Participant ids.")
    )
    sector = serializers.RegexField(
        r"^[A-Za-z0-9_-]{0,32}$",
        max_length=32,
        required=False,
        default="",
        allow_blank=True,
        help_text=_("The entities' sector (power, steel, cement, aluminium...): picks their allocation rule."),
    )

    def validate_entities(self, value: list[int]) -> list[Participant]:
        found = Participant.objects.in_bulk(value)
        missing = sorted(set(value) - set(found))
        if missing:
            raise serializers.ValidationError(
                gettext("No participant(s) %(missing)s.") % {"missing": missing}, code="participant_not_found"
            )
        return [found[pk] for pk in value]


class CoverApi(ActorMixin, APIView):
    """List compliance entities as covered for the year (registry); covering one again changes nothing."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=CoverIn, responses={201: ObligationOut(many=True)})
    def post(self, request: Request, year: int) -> Response:
        data = CoverIn(data=request.data)
        data.is_valid(raise_exception=True)
        obligations = entities_cover(
            actor=self.actor,
            year=_year(year),
            entities=data.validated_data["entities"],
            sector=data.validated_data["sector"],
        )
        rows = obligations_visible_to(self.actor).filter(pk__in=[o.pk for o in obligations]).order_by("pk")
        return Response(ObligationOut(rows, many=True).data, status=status.HTTP_201_CREATED)


# --- verified emissions ----------------------------------------------------------------------------------
class EmissionIn(serializers.Serializer):
    entity = IdField(help_text=_("Participant id of the covered entity."))
    year = serializers.IntegerField(min_value=2000, max_value=2100)
    quantity = QuantityField(min_value=0, help_text=_("Verified emissions of the year, tCO2e."))
    report_reference = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class EmissionOut(serializers.ModelSerializer):
    year = serializers.IntegerField(source="obligation.year_id")
    entity = serializers.IntegerField(source="obligation.entity_id")
    recorded_by = serializers.IntegerField(source="recorded_by_id", allow_null=True)

    class Meta:
        model = VerifiedEmission
        fields = [
            "id",
            "year",
            "entity",
            "version",
            "quantity",
            "report_reference",
            "note",
            "conservative",
            "recorded_by",
            "created_at",
        ]


class EmissionFilter(filters.FilterSet):
    year = IdFilter(field_name="obligation__year_id")
    entity = IdFilter(field_name="obligation__entity_id")

    class Meta:
        model = VerifiedEmission
        fields = ["year", "entity"]


class EmissionListApi(ActorMixin, generics.ListAPIView):
    """Every version of verified emissions (entities: their own). Verifiers and the registry record them;
    recording a figure again for the same entity and year is a correction, the next version."""

    serializer_class = EmissionOut
    filterset_class = EmissionFilter
    permission_classes = [KindRequired(ParticipantKind.VERIFIER, ParticipantKind.REGISTRY)]

    def get_queryset(self) -> QuerySet[VerifiedEmission]:
        if getattr(self, "swagger_fake_view", False):
            return VerifiedEmission.objects.none()
        queryset = VerifiedEmission.objects.select_related("obligation").order_by("-pk")
        if sees_all_obligations(self.actor):
            return queryset
        return queryset.filter(obligation__entity_id=self.actor.participant_id)

    @idempotent_request
    @extend_schema(request=EmissionIn, responses={201: EmissionOut}, operation_id="compliance_emissions_record")
    def post(self, request: Request) -> Response:
        data = EmissionIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        obligation = Obligation.objects.filter(year_id=v["year"], entity_id=v["entity"]).first()
        if obligation is None:
            raise ObligationNotFound(
                gettext("That entity is not covered for that year."),
                details={"entity": v["entity"], "year": v["year"]},
            )
        emission = emissions_record(
            actor=self.actor,
            obligation=obligation,
            quantity=v["quantity"],
            report_reference=v["report_reference"],
            note=v["note"],
        )
        return Response(EmissionOut(emission).data, status=status.HTTP_201_CREATED)


# --- allocation ------------------------------------------------------------------------------------------
class AllocationEntryOut(serializers.ModelSerializer):
    obligation = serializers.IntegerField(source="obligation_id")
    transaction = serializers.IntegerField(source="transaction_id", allow_null=True)
    rule = serializers.IntegerField(source="rule_id", allow_null=True, help_text=_("The allocation rule version used."))

    class Meta:
        model = AllocationEntry
        fields = [
            "id",
            "obligation",
            "kind",
            "outcome",
            "basis",
            "allocated_before",
            "target",
            "quantity",
            "available",
            "shortfall",
            "transaction",
            "rule",
            "computed",
            "deducted",
            "created_at",
        ]


PREALLOCATION_OUT = inline_serializer(
    "PreallocationResult",
    {
        "year": serializers.IntegerField(),
        "transaction": serializers.IntegerField(allow_null=True),
        "entries": AllocationEntryOut(many=True),
        "skipped": serializers.ListField(child=serializers.DictField()),
    },
)


class PreallocationApi(ActorMixin, APIView):
    """Pre-allocate the year to every covered entity not allocated yet: floor(share x its verified emissions
    of the year before), in one transaction (registry). Running it again allocates nothing twice."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=None, responses={200: PREALLOCATION_OUT, 202: PENDING_OUT})
    def post(self, request: Request, year: int) -> Response:
        found = _year(year)
        result = gated(
            actor=self.actor,
            operation=ApprovalOperation.PREALLOCATION,
            params={"year": found.pk},
            summary=preallocation_summary(found.pk),
            call=lambda: preallocation_run(actor=self.actor, year=found),
        )
        if isinstance(result, ApprovalRequest):
            return pending_response(result)
        return Response(
            {
                "year": result.year,
                "transaction": result.transaction.pk if result.transaction else None,
                "entries": AllocationEntryOut(result.entries, many=True).data,
                "skipped": result.skipped,
            }
        )


class TrueUpIn(serializers.Serializer):
    approved = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY, help_text=_("The approved allocation, t."))


class TrueUpApi(ActorMixin, APIView):
    """Bring the obligation's allocation to the approved amount: issue the difference or take it back
    (registry). A take-back the entity can no longer cover is refused (409 takeback_units_unavailable) and
    its shortfall recorded."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(
        request=TrueUpIn, responses={200: AllocationEntryOut, 202: PENDING_OUT}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def post(self, request: Request, pk: int) -> Response:
        obligation = _obligation_visible(self.actor, pk)
        data = TrueUpIn(data=request.data)
        data.is_valid(raise_exception=True)
        approved = data.validated_data["approved"]
        entry = gated(
            actor=self.actor,
            operation=ApprovalOperation.TRUE_UP,
            params={"obligation": obligation.pk, "approved": approved},
            summary=true_up_summary(obligation=obligation.pk, approved=approved),
            call=lambda: allocation_true_up(actor=self.actor, obligation=obligation, approved=approved),
        )
        if isinstance(entry, ApprovalRequest):
            return pending_response(entry)
        return Response(AllocationEntryOut(entry).data)


# --- surrender -------------------------------------------------------------------------------------------
class SurrenderItemIn(serializers.Serializer):
    asset = AssetField()
    quantity = QuantityField()


class SurrenderIn(serializers.Serializer):
    account = serializers.CharField(max_length=32, help_text=_("One of your holding accounts."))
    year = serializers.IntegerField(min_value=2000, max_value=2100, help_text=_("The compliance year."))
    items = SurrenderItemIn(many=True, allow_empty=False, min_length=1, max_length=100)  # type: ignore[call-arg]


class SurrenderItemOut(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    quantity = serializers.IntegerField()


class SurrenderOut(serializers.ModelSerializer):
    year = serializers.IntegerField(source="obligation.year_id")
    entity = serializers.IntegerField(source="obligation.entity_id")
    account = serializers.CharField(source="account.number")
    items = SurrenderItemOut(many=True)
    transaction = serializers.SerializerMethodField()

    class Meta:
        model = Surrender
        fields = [
            "id",
            "year",
            "entity",
            "account",
            "quantity",
            "ccer_quantity",
            "items",
            "created_at",
            "transaction",
        ]

    @extend_schema_field({"type": "object"})
    def get_transaction(self, surrender: Surrender) -> dict[str, Any]:
        return transaction_payload(surrender.transaction, self.context)


class SurrenderFilter(filters.FilterSet):
    year = IdFilter(field_name="obligation__year_id")
    entity = IdFilter(field_name="obligation__entity_id")
    account = filters.CharFilter(field_name="account__number")

    class Meta:
        model = Surrender
        fields = ["year", "entity", "account"]


class SurrenderListApi(ActorMixin, generics.ListAPIView):
    """Surrenders (entities: their own). POST surrenders units for a year's obligation, for good."""

    serializer_class = SurrenderOut
    filterset_class = SurrenderFilter

    def get_queryset(self) -> QuerySet[Surrender]:
        if getattr(self, "swagger_fake_view", False):
            return Surrender.objects.none()
        queryset = (
            Surrender.objects.select_related("obligation", "account", "transaction")
            .prefetch_related(
                "items__asset",
                # What transaction_payload would otherwise read per surrender (two queries each).
                Prefetch(
                    "transaction__postings",
                    Posting.objects.select_related("account", "asset").order_by("id"),
                    to_attr="_postings",
                ),
                Prefetch(
                    "transaction__serial_movements",
                    SerialMovement.objects.select_related("asset", "source", "destination").order_by("id"),
                    to_attr="_movements",
                ),
            )
            .order_by("-pk")
        )
        if sees_all_obligations(self.actor):
            return queryset
        return queryset.filter(obligation__entity_id=self.actor.participant_id)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "actor": self.actor}

    @idempotent_request
    @extend_schema(request=SurrenderIn, responses={201: SurrenderOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        data = SurrenderIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        surrender = surrender_create(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            year=v["year"],
            items=[SurrenderLine(asset=item["asset"], quantity=item["quantity"]) for item in v["items"]],
        )
        return Response(SurrenderOut(surrender, context={"actor": self.actor}).data, status=status.HTTP_201_CREATED)


# --- statement and assessment ----------------------------------------------------------------------------
class ComplianceLineOut(serializers.Serializer):
    time = serializers.DateTimeField()
    year = serializers.IntegerField()
    event = serializers.CharField()
    asset = serializers.CharField()
    quantity = serializers.IntegerField(allow_null=True)
    reference = serializers.CharField()
    detail = serializers.CharField()


STATEMENT_OUT = inline_serializer(
    "ComplianceStatement",
    {
        "entity": ParticipantRefOut(),
        "obligations": ObligationOut(many=True),
        "lines": ComplianceLineOut(many=True),
        "carryover": serializers.ListField(
            child=serializers.DictField(),
            help_text=_("The entity's carryover limit under each plan year's rule in force (as .../carryover?year=)."),
        ),
    },
)
STATEMENT_CSV_HEADER = ["time", "year", "event", "asset", "quantity", "reference", "detail"]
YEAR_RANGE = {"minimum": 2000, "maximum": 2100}  # as the year fields of the bodies
YEAR_PARAMETER = OpenApiParameter(
    "year", int_parameter_schema(**YEAR_RANGE), required=False, description="Only this compliance year."
)


class StatementApi(ActorMixin, APIView):
    """An entity's compliance statement: its obligations and, oldest first, every emission version,
    allocation, surrender and assessment. ``?format=csv`` streams the lines as CSV."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CsvRenderer]

    @extend_schema(responses=STATEMENT_OUT, parameters=[YEAR_PARAMETER])
    def get(self, request: Request, participant: int) -> Response | HttpResponseBase:
        entity = Participant.objects.filter(pk=participant).first()
        if entity is None or not (sees_all_obligations(self.actor) or self.actor.owns(entity.pk)):
            raise ParticipantNotFound(details={"participant": participant})
        year = query_int(request, "year", **YEAR_RANGE)
        lines = compliance_statement_lines(entity, year)
        if request.accepted_renderer.format == "csv":
            rows = (
                [
                    clock.local_iso(line.time),
                    line.year,
                    line.event,
                    line.asset,
                    "" if line.quantity is None else line.quantity,
                    line.reference,
                    line.detail,
                ]
                for line in lines
            )
            return csv_response(f"compliance-statement-{entity.pk}.csv", STATEMENT_CSV_HEADER, rows)
        obligations = obligations_visible_to(self.actor).filter(entity=entity).order_by("year_id")
        if year is not None:
            obligations = obligations.filter(year_id=year)
        from exchange.api.compliance_rules import carryover_payload  # the rules module builds on this one

        return Response(
            {
                "entity": ParticipantRefOut(entity).data,
                "obligations": ObligationOut(obligations, many=True).data,
                "lines": ComplianceLineOut(lines, many=True).data,
                "carryover": [carryover_payload(entity.pk, plan_year) for plan_year in carryover_plan_years()],
            }
        )


class AssessmentApi(ActorMixin, APIView):
    """Assess the year now (registry), as the scheduled job does after the deadline: each obligation's
    status, shortfall and penalty range. Refused before the deadline has passed; a closed year is
    returned as it is."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=None, responses={200: ObligationOut(many=True)})
    def post(self, request: Request, year: int) -> Response:
        compliance_assess(actor=self.actor, year=_year(year))
        rows = obligations_visible_to(self.actor).filter(year_id=year).order_by("pk")
        return Response(ObligationOut(rows, many=True).data)
