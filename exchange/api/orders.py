"""Orders and trades on the API: place, list and cancel your orders; your trades with your side and fee."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api.base import ActorMixin
from exchange.api.fields import (
    AssetField,
    BooleanFilter,
    ChoiceFilter,
    DateFilter,
    MoneyField,
    QuantityField,
    fen_to_str,
)
from exchange.api.idempotency import idempotent_request
from exchange.engine import client as engine_client
from exchange.models import Order, OrderMode, OrderStatus, Side, Trade, TradingMode
from exchange.selectors.accounts import account_owned
from exchange.selectors.market import orders_of, trades_of
from exchange.services.orders import OrderNotFound, order_cancel, order_place


class OrderIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    side = serializers.ChoiceField(choices=Side.choices)
    mode = serializers.ChoiceField(choices=OrderMode.choices, default=OrderMode.LISTING)
    price = MoneyField(min_fen=1, help_text=_('Limit price in yuan a tonne, e.g. "82.50".'))
    quantity = QuantityField()
    client_order_id = serializers.CharField(
        max_length=64, required=False, help_text=_("Unique per participant; default: the Idempotency-Key.")
    )


class TradeOut(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    price = MoneyField(source="price_fen")
    turnover = MoneyField(source="turnover_fen")
    settled = serializers.SerializerMethodField()

    class Meta:
        model = Trade
        fields = [
            "id",
            "asset",
            "mode",
            "price",
            "quantity",
            "turnover",
            "aggressor",
            "trading_day",
            "created_at",
            "settled",
        ]

    def get_settled(self, trade: Trade) -> bool:
        return trade.settlement_batch_id is not None


class MyTradeOut(TradeOut):
    side = serializers.SerializerMethodField()
    fee = serializers.SerializerMethodField()
    order = serializers.SerializerMethodField()

    class Meta(TradeOut.Meta):
        fields = [*TradeOut.Meta.fields, "side", "fee", "order"]

    def _mine_is_buy(self, trade: Trade) -> bool:
        actor = self.context["actor"]
        return actor.owns(trade.buy_order.participant_id) or (
            actor.sees_everything and not actor.owns(trade.sell_order.participant_id)
        )

    def get_side(self, trade: Trade) -> str:
        return Side.BUY if self._mine_is_buy(trade) else Side.SELL

    def get_fee(self, trade: Trade) -> str:
        return fen_to_str(trade.buyer_fee_fen if self._mine_is_buy(trade) else trade.seller_fee_fen)

    def get_order(self, trade: Trade) -> int:
        return trade.buy_order_id if self._mine_is_buy(trade) else trade.sell_order_id


class OrderOut(serializers.ModelSerializer):
    account = serializers.CharField(source="account.number")
    asset = serializers.CharField(source="asset.code")
    price = MoneyField(source="price_fen")
    remaining = serializers.IntegerField()
    filled_turnover = MoneyField(source="filled_turnover_fen")
    fees = MoneyField(source="fee_fen")
    reserved = serializers.SerializerMethodField(help_text=_("What the order holds: units, or cash in yuan."))

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "account",
            "asset",
            "side",
            "mode",
            "trading_mode",
            "price",
            "quantity",
            "filled",
            "remaining",
            "filled_turnover",
            "fees",
            "status",
            "end_reason",
            "reserved",
            "trading_day",
            "created_at",
            "ended_at",
        ]

    def get_reserved(self, order: Order) -> int | str:
        return order.hold.remaining if order.side == Side.SELL else fen_to_str(order.hold.remaining)


class PlacedOut(serializers.Serializer):
    order = OrderOut()
    trades = TradeOut(many=True)


class OrderFilter(filters.FilterSet):
    status = ChoiceFilter(choices=OrderStatus.choices)
    side = ChoiceFilter(choices=Side.choices)
    asset = filters.CharFilter(field_name="asset__code")
    account = filters.CharFilter(field_name="account__number")
    trading_day = DateFilter()

    class Meta:
        model = Order
        fields = ["status", "side", "asset", "account", "trading_day"]


def _order_id_of(key: str | None) -> str | None:
    """The order's id when the client gives none: the Idempotency-Key, or its sha256 if it is over 64 characters."""
    if key is None or len(key) <= 64:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def client_order_id_of(view: ActorMixin, given: str | None) -> str:
    """The order's client_order_id: the one given, else the request's Idempotency-Key (``_order_id_of``); 400
    on the client_order_id field when there is neither. Every endpoint that places an order names it so."""
    client_order_id = given or _order_id_of(view.idempotency_key())
    if not client_order_id:
        raise serializers.ValidationError(
            {"client_order_id": [gettext("Give a client_order_id or an Idempotency-Key.")]}
        )
    return client_order_id


class OrderListApi(ActorMixin, generics.ListAPIView):
    """Your orders, newest first; POST places a limit order (it may trade at once).

    Two identities, each with one meaning. The Idempotency-Key, when given, identifies the request: the
    same key with the same body (``client_order_id`` included) answers as the first time; with any other
    body or endpoint, 409 ``idempotency_conflict``. The ``client_order_id`` identifies the order, per
    participant, as a uniqueness rule: a second order under it is 409 ``duplicate_client_order_id``.
    Without a ``client_order_id`` the key is the order's id (its sha256 when longer than 64 characters).
    """

    # The refusals it answers beyond those of every operation of its kind (OpenAPI x-error-codes).
    error_codes = {
        "post": [
            "market_closed",
            "asset_not_tradable",
            "invalid_tick",
            "invalid_lot",
            "wrong_order_mode",
            "price_out_of_band",
            "insufficient_available",
            "duplicate_client_order_id",
            "account_not_found",
            "unknown_asset",
            "participant_suspended",
            "role_forbidden",
            "wrong_participant_kind",
            "engine_unavailable",
        ]
    }

    serializer_class = OrderOut
    filterset_class = OrderFilter

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return orders_of(self.actor)

    @idempotent_request
    @extend_schema(request=OrderIn, responses={201: PlacedOut}, operation_id="orders_place")
    def post(self, request: Request) -> Response:
        data = OrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        client_order_id = client_order_id_of(self, v.get("client_order_id"))
        account = account_owned(self.actor, v["account"])
        if engine_client.enabled():
            # The book's matching engine applies it and answers after the commit that holds it.
            acked = engine_client.place(
                actor=self.actor,
                account_id=account.pk,
                asset_id=v["asset"].pk,
                side=v["side"],
                mode=v["mode"],
                price_fen=v["price"],
                quantity=v["quantity"],
                client_order_id=client_order_id,
                replay=self.idempotency_key() is not None,
            )
            order_id, trades = acked["order"], list(Trade.objects.filter(pk__in=acked["trades"]).order_by("id"))
        else:
            placed = order_place(
                actor=self.actor,
                account=account,
                asset=v["asset"],
                side=v["side"],
                mode=v["mode"],
                price_fen=v["price"],
                quantity=v["quantity"],
                client_order_id=client_order_id,
            )
            order_id, trades = placed.order.pk, placed.trades
        order = Order.objects.select_related("account", "asset", "hold").get(pk=order_id)
        body = {"order": OrderOut(order).data, "trades": TradeOut(trades, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


def _my_order(actor: Any, pk: int) -> Order:
    order = orders_of(actor).filter(pk=pk).first()
    if order is None:
        raise OrderNotFound(details={"order": pk})
    return order


class OrderDetailApi(ActorMixin, APIView):
    @extend_schema(responses=OrderOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(OrderOut(_my_order(self.actor, pk)).data)


class OrderCancelApi(ActorMixin, APIView):
    """Cancel the unfilled part of your open order; what has filled still settles."""

    @idempotent_request
    @extend_schema(request=None, responses=OrderOut)
    def post(self, request: Request, pk: int) -> Response:
        mine = _my_order(self.actor, pk)
        if engine_client.enabled() and mine.trading_mode == TradingMode.CONTINUOUS:
            engine_client.cancel(actor=self.actor, asset_id=mine.asset_id, order_id=mine.pk)
            order = mine
        else:
            order = order_cancel(actor=self.actor, order=mine)
        return Response(OrderOut(Order.objects.select_related("account", "asset", "hold").get(pk=order.pk)).data)


class TradeFilter(filters.FilterSet):
    asset = filters.CharFilter(field_name="asset__code")
    trading_day = DateFilter()
    settled = BooleanFilter(field_name="settlement_batch", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Trade
        fields = ["asset", "trading_day", "settled"]


class MyTradesApi(ActorMixin, generics.ListAPIView):
    """Your trades (overseers: all), with your side, fee and order."""

    serializer_class = MyTradeOut
    filterset_class = TradeFilter

    def get_queryset(self) -> QuerySet[Trade]:
        if getattr(self, "swagger_fake_view", False):
            return Trade.objects.none()
        return trades_of(self.actor)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "actor": self.actor}
