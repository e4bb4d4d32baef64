"""The exchange: market rules per asset, orders, trades, daily prices and settlement batches.

Orders reserve what they may need through holds (a sell holds serial units, a buy holds cash for
price x quantity plus fee). Matching creates trades but moves nothing; a settlement batch later posts
delivery versus payment for every unsettled trade. Prices and money are integer fen.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction

DEFAULT_SESSIONS = "09:30-11:30,13:00-15:00"


class MarketRules(models.Model):
    """How an asset trades. Defaults are the exchange's: tick 0.01, lot 1 t, bands 10% and 30%, fee 0.6%."""

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, primary_key=True, related_name="rules")
    tradable = models.BooleanField(default=True)
    tick_fen = models.PositiveIntegerField(default=1, help_text=_("Price step in fen (1 = 0.01 yuan)."))
    lot = models.PositiveIntegerField(default=1, help_text=_("Quantity step in tonnes."))
    block_threshold = models.BigIntegerField(
        default=100_000, help_text=_("Listing orders are below this quantity, block orders at or above it.")
    )
    listing_band_bp = models.PositiveIntegerField(
        default=1000, help_text=_("Listing price band, basis points of the previous close.")
    )
    block_band_bp = models.PositiveIntegerField(
        default=3000, help_text=_("Block price band, basis points of the previous close.")
    )
    fee_bp = models.PositiveIntegerField(
        default=60, help_text=_("Fee on turnover from each side, basis points (60 = 0.6%).")
    )
    sessions = models.CharField(
        max_length=100,
        default=DEFAULT_SESSIONS,
        help_text=_("Trading sessions, Asia/Shanghai time, e.g. 09:30-11:30,13:00-15:00 (00:00-24:00: all day)."),
    )
    trading_days = models.CharField(
        max_length=8,
        choices=[
            ("weekdays", "Monday to Friday"),
            ("calendar", "The trading calendar's trading days (Monday to Friday, not on public holidays)"),
            ("daily", "Every day (rehearsals and the demo market)"),
        ],
        default="weekdays",
    )
    reference_price_fen = models.BigIntegerField(
        help_text=_("The price bands' reference until the asset has a close of its own (fen).")
    )

    class Meta:
        verbose_name_plural = _("market rules")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tick_fen__gte=1, lot__gte=1, block_threshold__gte=1, reference_price_fen__gte=1),
                name="rules_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"rules for {self.asset_id}"


class Side(models.TextChoices):
    BUY = "buy", _("Buy")
    SELL = "sell", _("Sell")


class OrderMode(models.TextChoices):
    LISTING = "listing", _("Listing (continuous)")
    BLOCK = "block", _("Block (bulk agreement)")


class OrderStatus(models.TextChoices):
    OPEN = "open", _("Open")
    FILLED = "filled", _("Filled")
    CANCELLED = "cancelled", _("Cancelled")


class Order(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="orders")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=Side.choices)
    mode = models.CharField(max_length=8, choices=OrderMode.choices)
    price_fen = models.BigIntegerField()
    quantity = models.BigIntegerField()
    filled = models.BigIntegerField(default=0)
    filled_turnover_fen = models.BigIntegerField(default=0, help_text=_("Sum of price x quantity of its fills."))
    fee_fen = models.BigIntegerField(
        default=0, help_text=_("Fees charged so far: fee(filled turnover), so the fills' fees add up to one rounding.")
    )
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    end_reason = models.CharField(max_length=32, blank=True, help_text=_("filled, cancelled, session_close"))
    client_order_id = models.CharField(max_length=64)
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="order")
    trading_day = models.DateField()
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "client_order_id"], name="order_client_id_unique"),
            models.CheckConstraint(
                condition=models.Q(price_fen__gt=0, quantity__gt=0, filled__gte=0, filled__lte=models.F("quantity")),
                name="order_quantities_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status=OrderStatus.OPEN, ended_at__isnull=True)
                | (~models.Q(status=OrderStatus.OPEN) & models.Q(ended_at__isnull=False)),
                name="order_open_iff_not_ended",
            ),
        ]
        indexes = [
            # The book: open orders of an asset by side and price, oldest first.
            models.Index(
                fields=["asset", "side", "price_fen", "id"], name="order_book_idx", condition=models.Q(status="open")
            ),
            models.Index(fields=["participant", "-id"], name="order_participant_idx"),
            models.Index(fields=["trading_day", "status"], name="order_day_idx"),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} {self.side} {self.quantity} {self.asset_id} @ {self.price_fen}"

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled


class Trade(models.Model):
    """A match between a buy and a sell order. Moves nothing until a settlement batch settles it."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="trades")
    mode = models.CharField(max_length=8, choices=OrderMode.choices)
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="buy_trades")
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sell_trades")
    aggressor = models.CharField(max_length=4, choices=Side.choices, help_text=_("The side of the incoming order."))
    price_fen = models.BigIntegerField()
    quantity = models.BigIntegerField()
    turnover_fen = models.BigIntegerField(help_text=_("price x quantity"))
    buyer_fee_fen = models.BigIntegerField()
    seller_fee_fen = models.BigIntegerField()
    trading_day = models.DateField()
    created_at = models.DateTimeField()
    settlement_batch = models.ForeignKey(
        "exchange.SettlementBatch", on_delete=models.PROTECT, null=True, blank=True, related_name="trades"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_fen__gt=0, quantity__gt=0, buyer_fee_fen__gte=0, seller_fee_fen__gte=0)
                & models.Q(turnover_fen=models.F("price_fen") * models.F("quantity")),
                name="trade_amounts_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["asset", "trading_day", "id"], name="trade_day_idx"),
            models.Index(fields=["id"], name="trade_unsettled_idx", condition=models.Q(settlement_batch__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"trade {self.pk} {self.quantity} {self.asset_id} @ {self.price_fen}"


class DailyPrice(models.Model):
    """An asset's trading day: OHLCV and the closing price (VWAP of listing trades, else the previous close)."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="daily_prices")
    day = models.DateField()
    open_fen = models.BigIntegerField(null=True, blank=True)
    high_fen = models.BigIntegerField(null=True, blank=True)
    low_fen = models.BigIntegerField(null=True, blank=True)
    close_fen = models.BigIntegerField()
    volume = models.BigIntegerField(default=0, help_text=_("Tonnes traded, listing and block."))
    turnover_fen = models.BigIntegerField(default=0)
    trades = models.IntegerField(default=0)
    close_from_trades = models.BooleanField(
        help_text=_("False when the day had no listing trade and kept the previous close.")
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["asset", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "day"], name="daily_price_unique"),
            models.CheckConstraint(condition=models.Q(close_fen__gt=0), name="daily_price_close_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.day} close {self.close_fen}"


class SettlementStatus(models.TextChoices):
    COMPLETED = "completed", _("Completed")
    EMPTY = "empty", _("Nothing to settle")


class SettlementBatch(models.Model):
    """One run of settlement: every trade unsettled when it started, delivery versus payment."""

    status = models.CharField(max_length=16, choices=SettlementStatus.choices)
    trades_count = models.IntegerField(default=0)
    units_total = models.BigIntegerField(default=0)
    cash_total_fen = models.BigIntegerField(default=0)
    fees_total_fen = models.BigIntegerField(default=0)
    holds_released = models.IntegerField(default=0)
    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="settlement_batch"
    )
    initiated_by = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("settlement batches")

    def __str__(self) -> str:
        return f"settlement batch {self.pk}: {self.trades_count} trades"
