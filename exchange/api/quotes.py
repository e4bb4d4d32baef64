"""Public market data: each market's and instrument's daily quotes, without login, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.money import fen_to_str
from exchange.selectors.quotes import Quote, daily_quotes

MODES = ("listing", "block", "auction", "continuous")


class QuotesQuery(serializers.Serializer):
    day = serializers.DateField(required=False)
    market = serializers.CharField(max_length=16, required=False)
    asset = serializers.CharField(max_length=64, required=False)


def quote_row(q: Quote) -> dict[str, Any]:
    return {
        "market": q.market,
        "asset": q.asset,
        "day": q.day.isoformat(),
        "open": fen_to_str(q.open_fen),
        "high": fen_to_str(q.high_fen),
        "low": fen_to_str(q.low_fen),
        "close": fen_to_str(q.close_fen),
        "close_final": q.final,
        "vwap": fen_to_str(q.vwap_fen),
        "volume": q.volume,
        "turnover": fen_to_str(q.turnover_fen),
        "trades": q.trades,
        "by_mode": {
            mode: {"volume": v["volume"], "turnover": fen_to_str(v["turnover_fen"]), "trades": v["trades"]}
            for mode, v in q.by_mode.items()
        },
    }


def _quotes(request: Request) -> list[Quote]:
    if request.query_params.get("day", None) == "":
        raise serializers.ValidationError({"day": ["A date, YYYY-MM-DD."]})
    query = QuotesQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    v = query.validated_data
    day: date | None = v.get("day")
    return daily_quotes(day=day, market=v.get("market"), asset=v.get("asset"))


PARAMETERS = [
    OpenApiParameter("day", OpenApiTypes.DATE, description="The trading day, YYYY-MM-DD (default: today, China time)."),
    OpenApiParameter("market", str, description="A market code, e.g. CN-CEA."),
    OpenApiParameter("asset", str, description="An instrument code, e.g. CEA-2024."),
]


class PublicQuotesApi(APIView):
    """Daily quotes per market and instrument: open, high, low, close, VWAP, volume and turnover per trading
    mode. Public: no login. ``close_final`` is false until the day's official close is recorded."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.ANY, auth=[], parameters=PARAMETERS, operation_id="public_quotes")
    def get(self, request: Request) -> Response:
        return Response([quote_row(q) for q in _quotes(request)])


class PublicQuotesCsvApi(APIView):
    """The same daily quotes as CSV (one row per instrument, volume and turnover per mode in columns)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "text/csv"): str}, auth=[], parameters=PARAMETERS, operation_id="public_quotes_csv")
    def get(self, request: Request) -> HttpResponse:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        header = ["market", "asset", "day", "open", "high", "low", "close", "close_final", "vwap", "volume", "turnover"]
        writer.writerow(header + [f"{m}_{k}" for m in MODES for k in ("volume", "turnover")])
        for q in _quotes(request):
            row = quote_row(q)
            writer.writerow(
                [row[k] for k in header]
                + [
                    x
                    for m in MODES
                    for x in (
                        q.by_mode.get(m, {}).get("volume", 0),
                        fen_to_str(q.by_mode.get(m, {}).get("turnover_fen", 0)),
                    )
                ]
            )
        return HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
