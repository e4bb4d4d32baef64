"""Market data on the API: an asset's order book, trade tape and daily bars."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import clock
from exchange.api.base import ActorMixin
from exchange.api.fields import fen_to_str
from exchange.api.listings import listed_asset
from exchange.api.orders import TradeOut
from exchange.models import OrderMode, Trade
from exchange.selectors.market import daily_bars, order_book, trade_tape
from exchange.selectors.prices import previous_close

LEVEL = inline_serializer(
    "BookLevel",
    many=True,
    fields={
        "price": serializers.CharField(),
        "quantity": serializers.IntegerField(),
        "orders": serializers.IntegerField(),
    },
)
BOOK_OUT = inline_serializer(
    "OrderBook",
    {
        "asset": serializers.CharField(),
        "mode": serializers.CharField(),
        "bids": LEVEL,
        "asks": LEVEL,
        "previous_close": serializers.CharField(),
    },
)


class OrderBookApi(ActorMixin, APIView):
    """The best five price levels on each side (quantities are what remains unfilled)."""

    @extend_schema(
        responses=BOOK_OUT, parameters=[OpenApiParameter("mode", str, enum=OrderMode.values, required=False)]
    )
    def get(self, request: Request, asset: str) -> Response:
        found = listed_asset(asset)
        mode = request.query_params.get("mode", OrderMode.LISTING)
        if mode not in OrderMode.values:
            raise serializers.ValidationError({"mode": [f"One of {', '.join(OrderMode.values)}."]})
        book = order_book(found, mode=mode)
        level = lambda lv: {"price": fen_to_str(lv.price_fen), "quantity": lv.quantity, "orders": lv.orders}  # noqa: E731
        reference = previous_close(found, clock.trading_day())
        return Response(
            {
                "asset": found.code,
                "mode": mode,
                "bids": [level(lv) for lv in book["bids"]],
                "asks": [level(lv) for lv in book["asks"]],
                "previous_close": fen_to_str(reference) if reference else None,
            }
        )


class TradeTapeApi(ActorMixin, generics.ListAPIView):
    """The asset's trades, newest first (no parties)."""

    serializer_class = TradeOut

    def get_queryset(self) -> QuerySet[Trade]:
        if getattr(self, "swagger_fake_view", False):
            return Trade.objects.none()
        return trade_tape(listed_asset(self.kwargs["asset"]))


BAR_OUT = inline_serializer(
    "DailyBar",
    many=True,
    fields={
        "day": serializers.DateField(),
        "open": serializers.CharField(allow_null=True),
        "high": serializers.CharField(allow_null=True),
        "low": serializers.CharField(allow_null=True),
        "close": serializers.CharField(allow_null=True),
        "volume": serializers.IntegerField(),
        "turnover": serializers.CharField(),
        "trades": serializers.IntegerField(),
        "final": serializers.BooleanField(),
    },
)


class DailyBarsApi(ActorMixin, APIView):
    """Daily open, high, low, close and volume; the close is the VWAP of listing trades, else the previous close."""

    @extend_schema(
        responses=BAR_OUT,
        parameters=[OpenApiParameter("start", date, required=False), OpenApiParameter("end", date, required=False)],
    )
    def get(self, request: Request, asset: str) -> Response:
        found = listed_asset(asset)
        try:
            end = (
                date.fromisoformat(request.query_params["end"])
                if "end" in request.query_params
                else clock.trading_day()
            )
            start = (
                date.fromisoformat(request.query_params["start"])
                if "start" in request.query_params
                else end - timedelta(days=90)
            )
        except ValueError:
            raise serializers.ValidationError({"start": ["Dates look like 2026-11-25."]}) from None
        money = lambda v: fen_to_str(v) if v is not None else None  # noqa: E731
        return Response(
            [
                {
                    "day": b.day,
                    "open": money(b.open_fen),
                    "high": money(b.high_fen),
                    "low": money(b.low_fen),
                    "close": money(b.close_fen),
                    "volume": b.volume,
                    "turnover": fen_to_str(b.turnover_fen),
                    "trades": b.trades,
                    "final": b.final,
                }
                for b in daily_bars(found, start, end)
            ]
        )
