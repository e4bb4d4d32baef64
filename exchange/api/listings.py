"""Market listings on the API: the listed assets and their trading rules (the exchange operator lists and
changes them)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.money import fen_to_str
from exchange.api.base import ActorMixin, ExchangeOnly
from exchange.api.fields import AssetField, MoneyField
from exchange.api.idempotency import idempotent_request
from exchange.errors import RulebookNotFound
from exchange.models import Asset, MarketRules, Rulebook
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.listings import asset_list, market_rules_update
from exchange.services.markets import rulebook_payload


def listed_asset(code: str) -> Asset:
    """The listed asset a URL path names; an unknown or unlisted one is a 404, as for ``/assets/{code}``."""
    asset = Asset.objects.filter(code=code, rules__isnull=False).first()
    if asset is None:
        raise NotFound(gettext("%(code)s is not listed.") % {"code": code}, details={"asset": code})
    return asset


class RulesOut(serializers.ModelSerializer):
    """An instrument's listing with the rules its market's rulebook in effect today gives it."""

    asset = serializers.CharField(source="asset.code")
    market = serializers.SerializerMethodField()
    rulebook_version = serializers.SerializerMethodField()
    tick = serializers.SerializerMethodField()
    lot = serializers.SerializerMethodField()
    modes = serializers.SerializerMethodField()
    reference_price = MoneyField(source="reference_price_fen")

    class Meta:
        model = MarketRules
        fields = ["asset", "market", "rulebook_version", "tradable", "tick", "lot", "modes", "reference_price"]

    def _book(self, rules: MarketRules) -> Rulebook | None:
        try:
            return rulebook_for(rules.asset)
        except RulebookNotFound:
            return None

    def get_market(self, rules: MarketRules) -> str | None:
        return rules.asset.market.code if rules.asset.market else None

    def get_rulebook_version(self, rules: MarketRules) -> int | None:
        book = self._book(rules)
        return book.version if book else None

    def get_tick(self, rules: MarketRules) -> str | None:
        book = self._book(rules)
        return fen_to_str(book.tick_fen) if book else None

    def get_lot(self, rules: MarketRules) -> int | None:
        book = self._book(rules)
        return book.lot if book else None

    def get_modes(self, rules: MarketRules) -> list[dict[str, Any]]:
        book = self._book(rules)
        return rulebook_payload(book)["modes"] if book else []


RULEBOOK_FIELDS = (
    "tick",
    "lot",
    "block_threshold",
    "listing_band_bp",
    "block_band_bp",
    "fee_bp",
    "sessions",
    "trading_days",
)


class MarketListingIn(serializers.Serializer):
    asset = AssetField()
    reference_price = MoneyField(min_fen=1)
    tradable = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Market-wide rules are the rulebook's: say so instead of ignoring them.
        given = sorted(set(self.initial_data) & set(RULEBOOK_FIELDS)) if isinstance(self.initial_data, dict) else []
        if given:
            raise serializers.ValidationError(
                {name: ["Set by the market's rulebook: publish a new rulebook version."] for name in given}
            )
        return attrs


def _rules_from(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in {"asset", "reference_price"}}


class ListingListApi(ActorMixin, generics.ListAPIView):
    """Listed assets and their trading rules; the exchange operator lists a new one."""

    serializer_class = RulesOut
    permission_classes = [ExchangeOnly]
    queryset = MarketRules.objects.select_related("asset").order_by("-asset_id")

    @idempotent_request
    @extend_schema(request=MarketListingIn, responses={201: RulesOut}, operation_id="market_list_asset")
    def post(self, request: Request) -> Response:
        data = MarketListingIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rules = asset_list(
            actor=self.actor, asset=v["asset"], reference_price_fen=v["reference_price"], **_rules_from(v)
        )
        return Response(RulesOut(rules).data, status=status.HTTP_201_CREATED)


class RulesUpdateIn(MarketListingIn):
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
