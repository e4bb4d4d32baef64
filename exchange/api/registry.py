"""Registry operations: CCER projects and issuances, CEA vintages and allocation (registry only)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Participant, ParticipantKind
from accounts.permissions import KindRequired
from config.parsers import JSONParser
from core.errors import InvalidInput, NotFound
from exchange.api.approvals import PENDING_OUT, pending_response
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin, CsvTextParser, uploaded_text
from exchange.api.fields import CODE_SCHEMA, AssetField, ChoiceFilter, IdField, IdFilter, QuantityField, YearFilter
from exchange.api.idempotency import idempotent_request
from exchange.api.representations import AssetOut, ProjectOut, transaction_payload
from exchange.errors import ProjectNotFound
from exchange.models import ApprovalOperation, ApprovalRequest, Asset, AssetKind, Issuance, Project, ProjectType
from exchange.selectors.accounts import holding_account
from exchange.services.approval_summaries import allocate_summary, issue_summary
from exchange.services.approvals import gated
from exchange.services.issuance import (
    AllocationRow,
    allocation_rows_from_csv,
    ccer_issue,
    cea_allocate,
    cea_vintage_create,
    project_register,
)

RegistryOnly = KindRequired(ParticipantKind.REGISTRY)


# --- projects ------------------------------------------------------------------------------------------
class ProjectIn(serializers.Serializer):
    code = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9-]{1,38}$", help_text=_("e.g. BJ-TZ-FOREST-001"))
    name = serializers.CharField(max_length=200)
    project_type = serializers.ChoiceField(choices=ProjectType.choices)
    methodology = serializers.CharField(max_length=64)
    location = serializers.CharField(max_length=200)
    owner = IdField(help_text=_("Participant id of the project owner."))
    crediting_start = serializers.DateField()
    crediting_end = serializers.DateField()
    ets_covered = serializers.BooleanField(default=False)

    def validate_owner(self, value: int) -> Participant:
        owner = Participant.objects.filter(pk=value).first()
        if owner is None:
            raise serializers.ValidationError(gettext("No such participant."), code="participant_not_found")
        return owner


class ProjectFilter(filters.FilterSet):
    owner = IdFilter(field_name="owner_id")
    project_type = ChoiceFilter(choices=ProjectType.choices)

    class Meta:
        model = Project
        fields = ["owner", "project_type", "status"]


class ProjectListApi(ActorMixin, generics.ListAPIView):
    """CCER projects (everyone reads); the registry registers new ones."""

    serializer_class = ProjectOut
    filterset_class = ProjectFilter
    permission_classes = [RegistryOnly]

    def get_queryset(self) -> QuerySet[Project]:
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        return Project.objects.select_related("owner").order_by("-pk")

    @idempotent_request
    @extend_schema(request=ProjectIn, responses={201: ProjectOut}, operation_id="projects_register")
    def post(self, request: Request) -> Response:
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_register(actor=self.actor, **data.validated_data)
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)


def project_by_code(code: str) -> Project:
    project = Project.objects.select_related("owner").filter(code=code.upper()).first()
    if project is None:
        raise ProjectNotFound(details={"project": code})
    return project


class ProjectDetailApi(ActorMixin, APIView):
    @extend_schema(responses=ProjectOut)
    def get(self, request: Request, code: str) -> Response:
        return Response(ProjectOut(project_by_code(code)).data)


class IssuanceIn(serializers.Serializer):
    vintage = serializers.IntegerField(min_value=2000, max_value=2100)
    monitoring_start = serializers.DateField()
    monitoring_end = serializers.DateField()
    quantity = QuantityField()
    external_reference = serializers.CharField(max_length=100, help_text=_("The issuance document number."))


class IssuanceOut(serializers.ModelSerializer):
    project = serializers.CharField(source="project.code")
    asset = serializers.CharField(source="asset.code")
    vintage = serializers.IntegerField(source="asset.vintage")
    transaction = serializers.IntegerField(source="transaction_id")

    class Meta:
        model = Issuance
        fields = [
            "external_reference",
            "project",
            "asset",
            "vintage",
            "monitoring_start",
            "monitoring_end",
            "quantity",
            "first_serial",
            "last_serial",
            "transaction",
            "created_at",
        ]


class IssuanceListApi(ActorMixin, generics.ListAPIView):
    """Issuances of a project; the registry issues a new CCER batch (idempotent by external reference)."""

    serializer_class = IssuanceOut
    permission_classes = [RegistryOnly]

    def get_queryset(self) -> QuerySet[Issuance]:
        if getattr(self, "swagger_fake_view", False):
            return Issuance.objects.none()
        project = project_by_code(self.kwargs["code"])
        return Issuance.objects.filter(project=project).select_related("project", "asset").order_by("-pk")

    @idempotent_request
    @extend_schema(request=IssuanceIn, responses={201: IssuanceOut, 202: PENDING_OUT}, operation_id="projects_issue")
    def post(self, request: Request, code: str) -> Response:
        project = project_by_code(code)
        data = IssuanceIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        params = {
            **v,
            "project": project.code,
            "monitoring_start": v["monitoring_start"].isoformat(),
            "monitoring_end": v["monitoring_end"].isoformat(),
        }
        result = gated(
            actor=self.actor,
            operation=ApprovalOperation.CCER_ISSUE,
            params=params,
            summary=issue_summary(
                quantity=v["quantity"], project=project.code, vintage=v["vintage"], reference=v["external_reference"]
            ),
            call=lambda: ccer_issue(actor=self.actor, project=project, **v),
        )
        if isinstance(result, ApprovalRequest):
            return pending_response(result)
        return Response(IssuanceOut(result).data, status=status.HTTP_201_CREATED)


# --- assets --------------------------------------------------------------------------------------------
class AssetFilter(filters.FilterSet):
    kind = ChoiceFilter(choices=AssetKind.choices)
    project = filters.CharFilter(field_name="project__code")
    vintage = YearFilter()

    class Meta:
        model = Asset
        fields = ["kind", "vintage", "project"]


class AssetListApi(ActorMixin, generics.ListAPIView):
    serializer_class = AssetOut
    filterset_class = AssetFilter
    queryset = Asset.objects.select_related("project").order_by("-pk")


class AssetDetailApi(ActorMixin, APIView):
    @extend_schema(responses=AssetOut)
    def get(self, request: Request, code: str) -> Response:
        asset = Asset.objects.select_related("project").filter(code=code).first()
        if asset is None:
            raise NotFound(gettext("No such asset."), details={"asset": code})
        return Response(AssetOut(asset).data)


class VintageIn(serializers.Serializer):
    vintage = serializers.IntegerField(min_value=2000, max_value=2100)


class CeaVintageCreateApi(ActorMixin, APIView):
    """Create the allowance asset of a compliance year (registry)."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=VintageIn, responses={201: AssetOut})
    def post(self, request: Request) -> Response:
        data = VintageIn(data=request.data)
        data.is_valid(raise_exception=True)
        asset = cea_vintage_create(actor=self.actor, vintage=data.validated_data["vintage"])
        return Response(AssetOut(asset).data, status=status.HTTP_201_CREATED)


# --- allocation ----------------------------------------------------------------------------------------
class AllocationRowIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    quantity = QuantityField()


class AllocationIn(serializers.Serializer):
    asset = AssetField()
    allocations = AllocationRowIn(  # type: ignore[call-arg]  # many=True takes max_length; the stubs lack it
        many=True, allow_empty=False, min_length=1, max_length=10000
    )
    memo = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


ALLOCATION_RESULT = inline_serializer(
    "AllocationResult",
    {"transaction": serializers.DictField(), "rows": serializers.IntegerField(), "total": serializers.IntegerField()},
)


def _allocate(view: ActorMixin, asset: Asset, rows: list[AllocationRow], memo: str) -> Response:
    """Allocate now, or answer 202 with an approval request when four eyes are needed."""
    result = gated(
        actor=view.actor,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={
            "asset": asset.code,
            "rows": [[r.account.number, r.quantity] for r in rows],
            "memo": memo,
        },
        summary=allocate_summary(asset=asset.code, quantities=[r.quantity for r in rows]),
        call=lambda: cea_allocate(actor=view.actor, asset=asset, rows=rows, memo=memo),
    )
    if isinstance(result, ApprovalRequest):
        return pending_response(result)
    body = {
        "transaction": transaction_payload(result, {"actor": view.actor}),
        "rows": len(rows),
        "total": sum(r.quantity for r in rows),
    }
    return Response(body, status=status.HTTP_201_CREATED)


class AllocationCreateApi(ActorMixin, APIView):
    """Allocate allowances to compliance entities' accounts; every row or none."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(
        request=AllocationIn, responses={201: ALLOCATION_RESULT, 202: PENDING_OUT}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def post(self, request: Request) -> Response:
        data = AllocationIn(data=request.data)
        data.is_valid(raise_exception=True)
        rows = [
            AllocationRow(account=holding_account(row["account"]), quantity=row["quantity"], line=index)
            for index, row in enumerate(data.validated_data["allocations"], start=1)
        ]
        return _allocate(self, data.validated_data["asset"], rows, data.validated_data["memo"])


class AllocationCsvApi(ActorMixin, APIView):
    """Allocate from a CSV file (``account,quantity`` per line): a bad row is reported by line number and
    nothing of the file is applied. Send it as a ``text/csv`` body or a multipart ``file``."""

    permission_classes = [RegistryOnly]
    parser_classes = [CsvTextParser, MultiPartParser, JSONParser]

    @idempotent_request
    @extend_schema(
        request={
            "text/csv": {"type": "string", "minLength": 1},
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
        },
        responses={201: ALLOCATION_RESULT, 202: PENDING_OUT},
        parameters=[
            IDEMPOTENCY_PARAMETER,
            OpenApiParameter("asset", CODE_SCHEMA, required=True, description="e.g. CEA-2024"),
        ],
    )
    def post(self, request: Request) -> Response:
        code = request.query_params.get("asset", "")
        asset = AssetField().run_validation(code) if code else None
        if asset is None:
            raise InvalidInput(gettext("Name the allowance asset: ?asset=CEA-2024."), details={"asset": ["required"]})
        text = uploaded_text(request)
        if text is None:
            raise InvalidInput(gettext("Send the CSV as a text/csv body or a multipart 'file'."))
        return _allocate(self, asset, allocation_rows_from_csv(text), "CSV allocation")
