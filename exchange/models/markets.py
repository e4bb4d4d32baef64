"""Markets and their rulebooks: the rules a market trades and holds under, held as data with effective dates.

A ``Market`` (``CN-CEA`` the national allowance market, ``CN-CCER`` the national voluntary reduction market,
``BJ-BEA`` the Beijing pilot allowance market) groups the instruments (``Asset.market``) that trade under one
rulebook. A ``Rulebook`` is one version of that market's rules, in effect from its ``effective_from`` day (China
Standard Time) until the next version's; a new version is a new row, and a version in effect is never edited
(``exchange.services.markets`` refuses it and audits every publication). Each trading mode the rulebook
enables is a ``RulebookMode`` row with its sessions, price band, minimum and maximum size and fee per side.

Read the rules in effect through ``exchange.selectors.rulebooks.rulebook_for``; docs/market.md names each
rule's source.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant, ParticipantKind


class Market(models.Model):
    code = models.CharField(max_length=16, unique=True, help_text=_("Stable code, e.g. CN-CEA, CN-CCER, BJ-BEA."))
    name = models.CharField(max_length=200)
    name_zh = models.CharField(max_length=200, blank=True)
    operator_name = models.CharField(
        max_length=200, help_text=_("The exchange that runs the market's trading, e.g. Beijing Green Exchange.")
    )
    operator = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="operated_markets",
        help_text=_("The exchange participant that runs it here, once one is registered."),
    )
    registry_name = models.CharField(
        max_length=200, blank=True, help_text=_("The registry that holds the units and settles the trades.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(code__regex=r"^[A-Z][A-Z0-9-]*$"), name="market_code_upper"),
        ]

    def __str__(self) -> str:
        return self.code


class TradingMode(models.TextChoices):
    LISTING = "listing", _("Listing agreement (pick a listing from the best five levels)")
    BLOCK = "block", _("Block agreement (negotiated with a named counterparty)")
    AUCTION = "auction", _("One-way auction")
    CONTINUOUS = "continuous", _("Continuous double auction (anonymous order book)")


class ParticipantTransfers(models.TextChoices):
    FREE = "free", _("Any holder to any holder")
    NON_TRADE_ONLY = "non_trade_only", _("To another participant only as a reviewed non-trade transfer")


class PositionLimitRule(models.TextChoices):
    NONE = "none", _("No position limit")
    FIXED = "fixed", _("A fixed number of tonnes")
    ALLOCATION_PLUS = "allocation_plus", _("The entity's allocation plus a number of tonnes (others: the number)")


class AuctionPricing(models.TextChoices):
    PAY_AS_BID = "pay_as_bid", _("Each winning bid pays its own price")
    CLEARING = "clearing", _("Every winning bid pays the clearing (lowest winning) price")


class SettlementBody(models.TextChoices):
    REGISTRY = "registry", _("The registry (the settlement body)")
    EXCHANGE = "exchange", _("The exchange")


class TradingDays(models.TextChoices):
    CALENDAR = "calendar", _("The trading calendar's trading days")
    WEEKDAYS = "weekdays", _("Monday to Friday")
    DAILY = "daily", _("Every day (rehearsals and the demo)")


def _kinds_field(help_text: Any) -> ArrayField:
    return ArrayField(
        models.CharField(max_length=32, choices=ParticipantKind.choices), default=list, blank=True, help_text=help_text
    )


class Rulebook(models.Model):
    """One version of a market's rules. Rows in effect are never edited: a change is a new version."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="rulebooks")
    version = models.PositiveIntegerField()
    effective_from = models.DateField(help_text=_("The first day (China Standard Time) this version governs."))
    title = models.CharField(max_length=300)
    sources = models.TextField(help_text=_("The decrees, measures and exchange rules these values come from."))
    # Instruments and prices
    tick_fen = models.PositiveIntegerField(default=1, help_text=_("Price step in fen (1 = 0.01 yuan)."))
    lot = models.PositiveIntegerField(default=1, help_text=_("Quantity step in tonnes."))
    # Calendar
    calendar_code = models.CharField(max_length=16, default="CN", help_text=_("The trading calendar, e.g. CN."))
    trading_days = models.CharField(max_length=8, choices=TradingDays.choices, default=TradingDays.CALENDAR)
    # Who may trade
    allowed_kinds = _kinds_field(_("Participant kinds that may trade."))
    barred_kinds = _kinds_field(_("Participant kinds that may never trade (registry, exchange, verifiers)."))
    legal_persons_only = models.BooleanField(default=False, help_text=_("Only legal persons and other organisations."))
    # Risk controls
    position_limit_rule = models.CharField(
        max_length=16, choices=PositionLimitRule.choices, default=PositionLimitRule.NONE
    )
    position_limit_t = models.BigIntegerField(
        null=True, blank=True, help_text=_("Tonnes: the cap (fixed) or what is added to the allocation.")
    )
    large_holder_threshold_t = models.BigIntegerField(
        null=True, blank=True, help_text=_("Holdings at or above this many tonnes are reported to exchange staff.")
    )
    alert_price_deviation_bp = models.PositiveIntegerField(
        default=2000, help_text=_("A trade this far from the previous close (basis points) raises an alert.")
    )
    alert_cancel_count = models.PositiveIntegerField(
        default=10, help_text=_("This many cancellations by one participant in a day raise a cancel-replace alert.")
    )
    # Auctions and settlement
    auction_pricing = models.CharField(max_length=12, choices=AuctionPricing.choices, default=AuctionPricing.PAY_AS_BID)
    settlement_body = models.CharField(max_length=8, choices=SettlementBody.choices, default=SettlementBody.REGISTRY)
    units_sellable_after_days = models.PositiveSmallIntegerField(
        default=1, help_text=_("Units bought on T are sellable from T + this many trading days (1: T+1).")
    )
    cash_withdrawable_after_days = models.PositiveSmallIntegerField(
        default=1, help_text=_("Cash from sales buys on T and is withdrawable from T + this many trading days.")
    )
    sale_cash_buys_same_day = models.BooleanField(
        default=True,
        help_text=_(
            "Cash from this market's sales buys on the trading day itself, before settlement (else only once settled)."
        ),
    )
    # Registry rules (transfers) and pledges
    participant_transfers = models.CharField(
        max_length=16, choices=ParticipantTransfers.choices, default=ParticipantTransfers.NON_TRADE_ONLY
    )
    trusted_accounts = models.BooleanField(
        default=False, help_text=_("Transfers to other participants go through the trusted list and its delay.")
    )
    transfer_delay_hours = models.PositiveIntegerField(
        default=0, help_text=_("The delay before a transfer to a newly trusted account may complete.")
    )
    pledge_valuation_band_bp = models.PositiveIntegerField(
        default=1000, help_text=_("Band around the reference price for enforcement by agreed valuation (basis points).")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["market", "-effective_from", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["market", "version"], name="rulebook_version_once"),
            models.UniqueConstraint(fields=["market", "effective_from"], name="rulebook_one_per_day"),
            models.CheckConstraint(
                condition=models.Q(version__gte=1, tick_fen__gte=1, lot__gte=1), name="rulebook_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(position_limit_rule=PositionLimitRule.NONE) | models.Q(position_limit_t__gte=0),
                name="rulebook_position_limit_set",
            ),
            models.CheckConstraint(
                condition=models.Q(participant_transfers__in=ParticipantTransfers.values)
                & models.Q(position_limit_rule__in=PositionLimitRule.values)
                & models.Q(auction_pricing__in=AuctionPricing.values)
                & models.Q(settlement_body__in=SettlementBody.values)
                & models.Q(trading_days__in=TradingDays.values),
                name="rulebook_choices_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.market_id and self.market.code} rulebook v{self.version} from {self.effective_from}"

    def mode(self, mode: str) -> RulebookMode | None:
        """The rules of one trading mode, or None when this rulebook does not enable it."""
        return next((m for m in self.modes.all() if m.mode == mode), None)

    @property
    def mode_names(self) -> list[str]:
        return [m.mode for m in self.modes.all()]


class RulebookMode(models.Model):
    """A trading mode a rulebook enables, with its sessions, band, sizes and fees."""

    rulebook = models.ForeignKey(Rulebook, on_delete=models.PROTECT, related_name="modes")
    mode = models.CharField(max_length=12, choices=TradingMode.choices)
    sessions = models.CharField(
        max_length=100,
        default="09:30-11:30,13:00-15:00",
        help_text=_("Sessions, China time, e.g. 09:30-11:30,13:00-15:00 (00:00-24:00: all day)."),
    )
    band_bp = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Price band around the previous close, basis points (none: no band).")
    )
    min_quantity = models.BigIntegerField(default=1, help_text=_("Smallest quantity of one order, listing or bid."))
    max_quantity = models.BigIntegerField(
        null=True, blank=True, help_text=_("Largest quantity of one order or listing (none: no cap).")
    )
    buyer_fee_bp = models.PositiveIntegerField(default=0, help_text=_("Buyer's fee on turnover, basis points."))
    seller_fee_bp = models.PositiveIntegerField(default=0, help_text=_("Seller's fee on turnover, basis points."))

    class Meta:
        ordering = ["rulebook", "mode"]
        constraints = [
            models.UniqueConstraint(fields=["rulebook", "mode"], name="rulebook_mode_once"),
            models.CheckConstraint(condition=models.Q(mode__in=TradingMode.values), name="rulebook_mode_valid"),
            models.CheckConstraint(
                condition=models.Q(min_quantity__gte=1)
                & (models.Q(max_quantity__isnull=True) | models.Q(max_quantity__gte=models.F("min_quantity"))),
                name="rulebook_mode_sizes_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mode} {self.sessions}"
