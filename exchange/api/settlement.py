"""Settlement on the API: the batches, and settling now (exchange operator)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.fields import MoneyField
from exchange.api.idempotency import idempotent_request
from exchange.models import SettlementBatch
from exchange.services.settlement import settlement_run


class BatchOut(serializers.ModelSerializer):
    cash_total = MoneyField(source="cash_total_fen")
    fees_total = MoneyField(source="fees_total_fen")

    class Meta:
        model = SettlementBatch
        fields = [
            "id",
            "status",
            "trades_count",
            "units_total",
            "cash_total",
            "fees_total",
            "holds_released",
            "transaction",
            "initiated_by",
            "started_at",
            "completed_at",
        ]


class SettlementBatchListApi(ActorMixin, generics.ListAPIView):
    """Settlement batches, newest first; the registry (the settlement body, Decree 775 art. 5) settles the closed
    trading days' trades now with POST."""

    # The refusals it answers beyond those of every operation of its kind (OpenAPI x-error-codes).
    error_codes = {"post": ["wrong_participant_kind", "role_forbidden"]}

    serializer_class = BatchOut
    permission_classes = [
        KindRequired(ParticipantKind.EXCHANGE, ParticipantKind.REGISTRY, ParticipantKind.AUDITOR, for_reads=True)
    ]
    queryset = SettlementBatch.objects.order_by("-id")

    @idempotent_request
    @extend_schema(
        request=None, responses={201: BatchOut}, parameters=[IDEMPOTENCY_PARAMETER], operation_id="settlement_run"
    )
    def post(self, request: Request) -> Response:
        self.actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)
        batch = settlement_run(actor=self.actor)
        return Response(BatchOut(batch).data, status=status.HTTP_201_CREATED)
