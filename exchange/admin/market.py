"""The market: listing rules, the order book, trades and daily prices."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import ServiceSaveMixin
from exchange.admin.base import ReadOnlyAdmin
from exchange.models import DailyPrice, MarketRules, Order, Trade
from exchange.services.trading import RULE_FIELDS, asset_list, market_rules_update


@admin.register(MarketRules)
class MarketRulesAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """Listing a new asset is done here (add) or on the API; changes go through market_rules_update."""

    list_display = [
        "asset",
        "tradable",
        "tick_fen",
        "lot",
        "block_threshold",
        "listing_band_bp",
        "block_band_bp",
        "fee_bp",
        "sessions",
        "reference_price_fen",
    ]
    list_editable = []

    def has_delete_permission(self, request: HttpRequest, obj: MarketRules | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: MarketRules | None = None) -> list[str]:
        return ["asset"] if obj else []

    def call_service(self, actor: Any, obj: MarketRules, form: forms.ModelForm, change: bool) -> MarketRules:
        fields = {name: getattr(obj, name) for name in (*RULE_FIELDS, "reference_price_fen")}
        if change:
            current = MarketRules.objects.get(pk=obj.pk)
            return market_rules_update(actor=actor, rules=current, **fields)
        reference = fields.pop("reference_price_fen")
        return asset_list(actor=actor, asset=obj.asset, reference_price_fen=reference, **fields)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """The order book: filter on status "open" to see it."""

    list_display = [
        "id",
        "asset",
        "side",
        "mode",
        "price_fen",
        "quantity",
        "filled",
        "status",
        "participant",
        "account",
        "created_at",
    ]
    list_filter = ["status", "side", "mode", "asset"]
    search_fields = ["client_order_id", "account__number", "participant__name"]
    list_select_related = ["asset", "participant", "account"]
    ordering = ["asset", "side", "price_fen", "id"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "asset",
        "mode",
        "price_fen",
        "quantity",
        "turnover_fen",
        "buyer_fee_fen",
        "seller_fee_fen",
        "trading_day",
        "settlement_batch_id",
    ]
    list_filter = ["asset", "mode", "trading_day"]
    list_select_related = ["asset"]


@admin.register(DailyPrice)
class DailyPriceAdmin(ReadOnlyAdmin):
    list_display = [
        "asset",
        "day",
        "open_fen",
        "high_fen",
        "low_fen",
        "close_fen",
        "volume",
        "turnover_fen",
        "trades",
        "close_from_trades",
    ]
    list_filter = ["asset"]
