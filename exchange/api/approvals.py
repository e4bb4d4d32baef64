"""Approval requests for issuance and allocation above the four-eyes threshold (registry)."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from exchange.api.base import ActorMixin
from exchange.api.fields import ChoiceFilter
from exchange.api.idempotency import idempotent_request
from exchange.models import ApprovalRequest, ApprovalStatus
from exchange.services.approvals import ApprovalNotFound, approval_approve, approval_reject

RegistryOnly = KindRequired(ParticipantKind.REGISTRY, ParticipantKind.AUDITOR, for_reads=True)


class ApprovalOut(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "operation",
            "summary",
            "quantity",
            "params",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "reason",
            "result",
        ]


PENDING_OUT = inline_serializer("ApprovalPending", {"approval": ApprovalOut(), "message": serializers.CharField()})


def pending_response(approval: ApprovalRequest) -> Response:
    """202: the operation waits for a second registry user's approval."""
    return Response(
        {"approval": ApprovalOut(approval).data, "message": "Above the four-eyes threshold: waiting for approval."},
        status=status.HTTP_202_ACCEPTED,
    )


class ApprovalFilter(filters.FilterSet):
    status = ChoiceFilter(choices=ApprovalStatus.choices)

    class Meta:
        model = ApprovalRequest
        fields = ["status", "operation"]


class ApprovalListApi(ActorMixin, generics.ListAPIView):
    """Approval requests, newest first (registry and auditors)."""

    serializer_class = ApprovalOut
    filterset_class = ApprovalFilter
    permission_classes = [RegistryOnly]

    def get_queryset(self) -> QuerySet[ApprovalRequest]:
        return ApprovalRequest.objects.select_related("requested_by", "decided_by").order_by("-id")


def _approval(pk: int) -> ApprovalRequest:
    approval = ApprovalRequest.objects.select_related("requested_by", "decided_by").filter(pk=pk).first()
    if approval is None:
        raise ApprovalNotFound(details={"approval": pk})
    return approval


class ApprovalDetailApi(ActorMixin, APIView):
    permission_classes = [RegistryOnly]

    @extend_schema(responses=ApprovalOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ApprovalOut(_approval(pk)).data)


class ApprovalApproveApi(ActorMixin, APIView):
    """Approve and carry out the request now (a registry user other than the requester)."""

    # The refusals it answers beyond those of every operation of its kind (OpenAPI x-error-codes).
    error_codes = [
        "approval_not_found",
        "approval_not_pending",
        "four_eyes_same_user",
        "wrong_participant_kind",
        "role_forbidden",
    ]

    permission_classes = [KindRequired(ParticipantKind.REGISTRY)]

    @idempotent_request
    @extend_schema(request=None, responses=ApprovalOut)
    def post(self, request: Request, pk: int) -> Response:
        approved = approval_approve(actor=self.actor, approval=_approval(pk))
        return Response(ApprovalOut(_approval(approved.pk)).data)


class ApprovalRejectIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class ApprovalRejectApi(ActorMixin, APIView):
    permission_classes = [KindRequired(ParticipantKind.REGISTRY)]

    @idempotent_request
    @extend_schema(request=ApprovalRejectIn, responses=ApprovalOut)
    def post(self, request: Request, pk: int) -> Response:
        data = ApprovalRejectIn(data=request.data)
        data.is_valid(raise_exception=True)
        rejected = approval_reject(actor=self.actor, approval=_approval(pk), reason=data.validated_data["reason"])
        return Response(ApprovalOut(_approval(rejected.pk)).data)
