"""Risk reports for exchange staff (and the registry and auditors): large holders and abnormal-trading alerts."""

from __future__ import annotations

from datetime import date

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from exchange.api.base import ActorMixin
from exchange.selectors.risk import large_holders, trading_alerts

STAFF = KindRequired(ParticipantKind.EXCHANGE, ParticipantKind.REGISTRY, ParticipantKind.AUDITOR, for_reads=True)


class DayQuery(serializers.Serializer):
    day = serializers.DateField(required=False)


def _day(request: Request) -> date | None:
    if request.query_params.get("day", None) == "":
        raise serializers.ValidationError({"day": ["A date, YYYY-MM-DD."]})
    query = DayQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data.get("day")


DAY = [OpenApiParameter("day", OpenApiTypes.DATE, description="The trading day (default: today, China time).")]


class LargeHoldersApi(ActorMixin, APIView):
    """Accounts at or above their market's large-holder threshold of an instrument, and when they crossed it."""

    permission_classes = [STAFF]

    @extend_schema(responses=OpenApiTypes.ANY, parameters=DAY, operation_id="risk_large_holders")
    def get(self, request: Request) -> Response:
        return Response(large_holders(_day(request)))


class TradingAlertsApi(ActorMixin, APIView):
    """A day's abnormal-trading alerts: related parties trading, repeated cancel-replace, trades far from the
    previous close (thresholds from each market's rulebook)."""

    permission_classes = [STAFF]

    @extend_schema(responses=OpenApiTypes.ANY, parameters=DAY, operation_id="risk_alerts")
    def get(self, request: Request) -> Response:
        return Response(trading_alerts(_day(request)))
