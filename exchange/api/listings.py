"""Market listings on the API: the listed assets and their trading rules (the exchange operator lists and
changes them)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.limits import MAX_QUANTITY
from exchange.api.base import ActorMixin, ExchangeOnly
from exchange.api.fields import AssetField, MoneyField
from exchange.api.idempotency import idempotent_request
from exchange.models import Asset, MarketRules
from exchange.services.trading import asset_list, market_rules_update


def listed_asset(code: str) -> Asset:
    """The listed asset a URL path names; an unknown or unlisted one is a 404, as for ``/assets/{code}``."""
    asset = Asset.objects.filter(code=code, rules__isnull=False).first()
    if asset is None:
        raise NotFound(f"{code} is not listed.", details={"asset": code})
    return asset


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
    block_threshold = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, required=False)
    listing_band_bp = serializers.IntegerField(min_value=0, max_value=10000, required=False)
    block_band_bp = serializers.IntegerField(min_value=0, max_value=10000, required=False)
    fee_bp = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    sessions = serializers.CharField(max_length=100, required=False)
    trading_days = serializers.ChoiceField(choices=["weekdays", "calendar", "daily"], required=False)


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
