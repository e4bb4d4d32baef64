"""The market: listing rules, the order book, trades and daily prices."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.admin import ServiceSaveMixin, admin_actor
from core.errors import DomainError
from exchange.admin.base import ReadOnlyAdmin
from exchange.admin_site import money_formfield
from exchange.models import DailyPrice, Market, MarketRules, Order, Rulebook, RulebookMode, Trade
from exchange.selectors.risk import large_holders, trading_alerts
from exchange.selectors.rulebooks import rulebook_latest
from exchange.services import markets as market_services
from exchange.services.listings import RULE_FIELDS, asset_list, market_rules_update


@admin.register(MarketRules)
class MarketRulesAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """Listing a new asset is done here (add) or on the API; changes go through market_rules_update."""

    list_display = ["asset", "tradable", "reference_price_fen"]
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


class RulebookModeInline(admin.TabularInline):
    model = RulebookMode
    extra = 0
    can_delete = False
    fields = ["mode", "sessions", "band_bp", "min_quantity", "max_quantity", "buyer_fee_bp", "seller_fee_bp"]
    readonly_fields = ["mode", "sessions", "band_bp", "min_quantity", "max_quantity", "buyer_fee_bp", "seller_fee_bp"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Market)
class MarketAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "operator_name", "registry_name"]


# A trading mode's rates as a person types them in the modes' JSON: percentages under these names, kept in
# basis points under the model's.
MODE_RATES = {"band": "band_bp", "buyer_fee": "buyer_fee_bp", "seller_fee": "seller_fee_bp"}


def modes_typed(modes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Modes as kept (basis points) -> as typed on the page (percent strings, "10.00")."""
    kept_as = {bp: typed for typed, bp in MODE_RATES.items()}
    return [
        {
            kept_as.get(name, name): (f"{Decimal(value) / 100:.2f}" if name in kept_as and value is not None else value)
            for name, value in mode.items()
        }
        for mode in modes
    ]


def _mode_rate(mode: dict[str, Any], name: str) -> int | None:
    value = mode[name]
    if value is None:
        return None
    try:
        rate = Decimal(str(value).replace("%", "").strip())
    except ArithmeticError:
        rate = None
    # As a PercentField takes it: from 0 to 99,999.99, two decimals at most.
    if rate is None or not rate.is_finite() or not 0 <= rate < 100_000 or rate != rate.quantize(Decimal("0.01")):
        raise forms.ValidationError(
            _('Mode %(mode)s: %(name)s is a percentage with at most two decimals, e.g. "10.00".'),
            code="invalid_rate",
            params={"mode": mode.get("mode", "?"), "name": name},
        )
    return int(rate.scaleb(2))


class RulebookPublishForm(forms.ModelForm):
    """A new version of one market's rulebook: the latest version's rules as the starting values, money in
    yuan and rates in percent as on every admin form (the modes' band and fees too)."""

    modes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
        label=_("Trading modes"),
        help_text=_(
            "JSON: one object per mode (mode, sessions, band, min_quantity, max_quantity, buyer_fee, seller_fee); "
            'the band and the fees in percent, e.g. "10.00".'
        ),
    )

    class Meta:
        model = Rulebook
        fields = ["effective_from", *market_services.RULE_FIELDS]
        formfield_callback = money_formfield

    def clean_modes(self) -> list[dict[str, Any]]:
        try:
            modes = json.loads(self.cleaned_data["modes"])
        except ValueError:
            raise forms.ValidationError(_("The modes are not valid JSON.")) from None
        if not isinstance(modes, list) or not all(isinstance(m, dict) for m in modes):
            raise forms.ValidationError(_("The modes are a JSON list of objects."))
        return [
            {
                MODE_RATES.get(name, name): (_mode_rate(mode, name) if name in MODE_RATES else value)
                for name, value in mode.items()
            }
            for mode in modes
        ]


@admin.register(Rulebook)
class RulebookAdmin(ReadOnlyAdmin):
    """Versions are published through rulebook_publish (here: "Publish a new version", or the API
    ``/api/v1/markets/<code>/rulebooks``); a version in effect is never edited (the database refuses it)."""

    list_display = ["market", "version", "effective_from", "title", "settlement_body", "position_limit_rule"]
    list_filter = ["market"]
    inlines = [RulebookModeInline]
    change_list_template = "admin/exchange/rulebook_changelist.html"

    def get_urls(self) -> list[Any]:
        from django.urls import path

        return [
            path("risk/", self.admin_site.admin_view(self.risk), name="exchange_rulebook_risk"),
            path(
                "publish/<str:market>/",
                self.admin_site.admin_view(self.publish_view),
                name="exchange_rulebook_publish",
            ),
            *super().get_urls(),
        ]

    def publish_view(self, request: HttpRequest, market: str) -> HttpResponse:
        """Publish a new version of ``market``'s rulebook: only the values that differ from the latest version
        are passed on as changes (and the modes if they differ), so the audit event names exactly those."""
        found = Market.objects.filter(code=market).first()
        if found is None:
            messages.error(request, _("No market has this code."))
            return HttpResponseRedirect(reverse("admin:exchange_rulebook_changelist"))
        latest = rulebook_latest(found)
        base = model_to_dict(latest, fields=market_services.RULE_FIELDS) if latest else {}
        base_modes = (
            [{n: getattr(m, n) for n in market_services.MODE_FIELDS} for m in latest.modes.all()] if latest else []
        )
        initial = {**base, "modes": json.dumps(modes_typed(base_modes), indent=1, ensure_ascii=False)}
        form = RulebookPublishForm(request.POST or None, initial=initial, instance=Rulebook(market=found))
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            changes = {n: data[n] for n in market_services.RULE_FIELDS if n in data and data[n] != base.get(n)}
            try:
                book = market_services.rulebook_publish(
                    actor=admin_actor(request),
                    market=found,
                    effective_from=data["effective_from"],
                    changes=changes,
                    modes=data["modes"] if data["modes"] != base_modes else None,
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                messages.success(
                    request,
                    _("Version %(version)s of %(market)s is published, effective from %(day)s.")
                    % {"version": book.version, "market": found.code, "day": book.effective_from.isoformat()},
                )
                return HttpResponseRedirect(reverse("admin:exchange_rulebook_change", args=[book.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Publish a new version of %(market)s") % {"market": found.code},
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/exchange/service_form.html", context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "markets": Market.objects.order_by("code")}
        return super().changelist_view(request, extra)

    def risk(self, request: HttpRequest) -> HttpResponse:
        """Large holders and today's abnormal-trading alerts, for exchange staff."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("Risk: large holders and trading alerts"),
            "holders": large_holders(),
            "alerts": trading_alerts(),
        }
        return TemplateResponse(request, "admin/exchange/risk.html", context)
