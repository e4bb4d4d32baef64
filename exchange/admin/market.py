"""The market: listing rules, the order book, trades and daily prices."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import ServiceSaveMixin
from exchange.admin.base import ReadOnlyAdmin
from exchange.models import DailyPrice, Market, MarketRules, Order, Rulebook, RulebookMode, Trade
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
        "settlement_batch",
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


class RulebookModeInline(admin.TabularInline):
    model = RulebookMode
    extra = 0
    can_delete = False
    fields = ["mode", "sessions", "band_bp", "min_quantity", "max_quantity", "buyer_fee_bp", "seller_fee_bp"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Market)
class MarketAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "operator_name", "registry_name"]


@admin.register(Rulebook)
class RulebookAdmin(ReadOnlyAdmin):
    """Versions are published through rulebook_publish (API ``/api/v1/markets/<code>/rulebooks/``); a version
    in effect is never edited (the database refuses it)."""

    list_display = ["market", "version", "effective_from", "title", "settlement_body", "position_limit_rule"]
    list_filter = ["market"]
    inlines = [RulebookModeInline]
