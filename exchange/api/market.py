"""The market on the API: listings, cash, orders, the book, trades, daily bars, settlement."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from config.errors import NotFound
from exchange import clock
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.fields import AssetField, MoneyField, QuantityField, fen_to_str
from exchange.api.idempotency import idempotent_request
from exchange.api.representations import transaction_payload
from exchange.models import Asset, MarketRules, Order, OrderMode, OrderStatus, SettlementBatch, Side, Trade
from exchange.selectors.accounts import account_owned, holding_account
from exchange.selectors.market import daily_bars, order_book, orders_of, trade_tape, trades_of
from exchange.services.settlement import settlement_run
from exchange.services.trading import (
    OrderNotFound,
    asset_list,
    cash_deposit,
    cash_withdraw,
    market_rules_update,
    order_cancel,
    order_place,
)

ExchangeOnly = KindRequired(ParticipantKind.EXCHANGE)


def listed_asset(code: str) -> Asset:
    """The listed asset a URL path names; an unknown or unlisted one is a 404, as for ``/assets/{code}``."""
    asset = Asset.objects.filter(code=code, rules__isnull=False).first()
    if asset is None:
        raise NotFound(f"{code} is not listed.", details={"asset": code})
    return asset


# --- listings ----------------------------------------------------------------------------------------------
class RulesOut(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    tick = MoneyField(source="tick_fen")
    reference_price = MoneyField(source="reference_price_fen")
    fee_percent = serializers.SerializerMethodField()

    class Meta:
        model = MarketRules
        fields = [
            "asset",
            "tradable",
            "tick",
            "lot",
            "block_threshold",
            "listing_band_bp",
            "block_band_bp",
            "fee_bp",
            "fee_percent",
            "sessions",
            "reference_price",
        ]

    def get_fee_percent(self, rules: MarketRules) -> str:
        return f"{rules.fee_bp / 100:.2f}"


class ListingIn(serializers.Serializer):
    asset = AssetField()
    reference_price = MoneyField(min_fen=1)
    tradable = serializers.BooleanField(required=False)
    tick = MoneyField(min_fen=1, required=False)
    lot = serializers.IntegerField(min_value=1, max_value=10**9, required=False)
    block_threshold = serializers.IntegerField(min_value=1, max_value=10**12, required=False)
    listing_band_bp = serializers.IntegerField(min_value=0, max_value=10000, required=False)
    block_band_bp = serializers.IntegerField(min_value=0, max_value=10000, required=False)
    fee_bp = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    sessions = serializers.CharField(max_length=100, required=False)
    trading_days = serializers.ChoiceField(choices=["weekdays", "daily"], required=False)


def _rules_from(data: dict[str, Any]) -> dict[str, Any]:
    rules = {k: v for k, v in data.items() if k not in {"asset", "reference_price", "tick"}}
    if "tick" in data:
        rules["tick_fen"] = data["tick"]
    return rules


class ListingListApi(ActorMixin, generics.ListAPIView):
    """Listed assets and their trading rules; the exchange operator lists a new one."""

    serializer_class = RulesOut
    permission_classes = [ExchangeOnly]
    queryset = MarketRules.objects.select_related("asset").order_by("-asset_id")

    @idempotent_request
    @extend_schema(request=ListingIn, responses={201: RulesOut}, operation_id="market_list_asset")
    def post(self, request: Request) -> Response:
        data = ListingIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rules = asset_list(
            actor=self.actor, asset=v["asset"], reference_price_fen=v["reference_price"], **_rules_from(v)
        )
        return Response(RulesOut(rules).data, status=status.HTTP_201_CREATED)


class RulesUpdateIn(ListingIn):
    asset = None  # type: ignore[assignment]
    reference_price = MoneyField(min_fen=1, required=False)


class ListingDetailApi(ActorMixin, APIView):
    permission_classes = [ExchangeOnly]

    @extend_schema(responses=RulesOut)
    def get(self, request: Request, asset: str) -> Response:
        return Response(RulesOut(listed_asset(asset).rules).data)

    @extend_schema(request=RulesUpdateIn, responses=RulesOut, operation_id="market_rules_update")
    def patch(self, request: Request, asset: str) -> Response:
        rules = listed_asset(asset).rules
        data = RulesUpdateIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = _rules_from(data.validated_data)
        if "reference_price" in data.validated_data:
            changes["reference_price_fen"] = data.validated_data["reference_price"]
        return Response(RulesOut(market_rules_update(actor=self.actor, rules=rules, **changes)).data)


# --- cash ----------------------------------------------------------------------------------------------
class CashIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    amount = MoneyField(min_fen=1)
    reference = serializers.CharField(
        max_length=100,
        help_text="The bank's reference, unique per booking: booking it again is 409 duplicate_bank_reference.",
    )


class CashDepositApi(ActorMixin, APIView):
    """Book cash a participant paid in (exchange operator)."""

    permission_classes = [ExchangeOnly]

    @idempotent_request
    @extend_schema(request=CashIn, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = CashIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        txn = cash_deposit(
            actor=self.actor, account=holding_account(v["account"]), amount_fen=v["amount"], reference=v["reference"]
        )
        return Response(transaction_payload(txn, {"actor": self.actor}), status=status.HTTP_201_CREATED)


class CashWithdrawApi(ActorMixin, APIView):
    """Pay a participant's available cash out to its bank (exchange operator)."""

    permission_classes = [ExchangeOnly]

    @idempotent_request
    @extend_schema(request=CashIn, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = CashIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        txn = cash_withdraw(
            actor=self.actor, account=holding_account(v["account"]), amount_fen=v["amount"], reference=v["reference"]
        )
        return Response(transaction_payload(txn, {"actor": self.actor}), status=status.HTTP_201_CREATED)


# --- orders --------------------------------------------------------------------------------------------
class OrderIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    side = serializers.ChoiceField(choices=Side.choices)
    mode = serializers.ChoiceField(choices=OrderMode.choices, default=OrderMode.LISTING)
    price = MoneyField(min_fen=1, help_text='Limit price in yuan a tonne, e.g. "82.50".')
    quantity = QuantityField()
    client_order_id = serializers.CharField(
        max_length=64, required=False, help_text="Unique per participant; default: the Idempotency-Key."
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
    reserved = serializers.SerializerMethodField(help_text="What the order holds: units, or cash in yuan.")

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "account",
            "asset",
            "side",
            "mode",
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
    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    side = filters.ChoiceFilter(choices=Side.choices)
    asset = filters.CharFilter(field_name="asset__code")
    account = filters.CharFilter(field_name="account__number")
    trading_day = filters.DateFilter()

    class Meta:
        model = Order
        fields = ["status", "side", "asset", "account", "trading_day"]


def _order_id_of(key: str | None) -> str | None:
    """The order's id when the client gives none: the Idempotency-Key, or its sha256 if it is over 64 characters."""
    if key is None or len(key) <= 64:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class OrderListApi(ActorMixin, generics.ListAPIView):
    """Your orders, newest first; POST places a limit order (it may trade at once).

    Two identities, each with one meaning. The Idempotency-Key, when given, identifies the request: the
    same key with the same body (``client_order_id`` included) answers as the first time; with any other
    body or endpoint, 409 ``idempotency_conflict``. The ``client_order_id`` identifies the order, per
    participant, as a uniqueness rule: a second order under it is 409 ``duplicate_client_order_id``.
    Without a ``client_order_id`` the key is the order's id (its sha256 when longer than 64 characters).
    """

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
        client_order_id = v.get("client_order_id") or _order_id_of(self.idempotency_key())
        if not client_order_id:
            raise serializers.ValidationError({"client_order_id": ["Give a client_order_id or an Idempotency-Key."]})
        placed = order_place(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            asset=v["asset"],
            side=v["side"],
            mode=v["mode"],
            price_fen=v["price"],
            quantity=v["quantity"],
            client_order_id=client_order_id,
        )
        order = Order.objects.select_related("account", "asset", "hold").get(pk=placed.order.pk)
        body = {"order": OrderOut(order).data, "trades": TradeOut(placed.trades, many=True).data}
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
        order = order_cancel(actor=self.actor, order=_my_order(self.actor, pk))
        return Response(OrderOut(Order.objects.select_related("account", "asset", "hold").get(pk=order.pk)).data)


# --- market data ---------------------------------------------------------------------------------------
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
        from exchange.selectors.prices import previous_close

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


class TradeFilter(filters.FilterSet):
    asset = filters.CharFilter(field_name="asset__code")
    trading_day = filters.DateFilter()
    settled = filters.BooleanFilter(field_name="settlement_batch", lookup_expr="isnull", exclude=True)

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


# --- settlement ----------------------------------------------------------------------------------------
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
    """Settlement batches, newest first; the exchange operator settles now with POST."""

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
        self.actor.require_kind(ParticipantKind.EXCHANGE, allow_system=False)
        batch = settlement_run(actor=self.actor)
        return Response(BatchOut(batch).data, status=status.HTTP_201_CREATED)
