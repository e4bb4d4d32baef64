"""The exchange: market rules per asset, orders, trades, daily prices and settlement batches.

Orders reserve what they may need through holds (a sell holds serial units, a buy holds cash for
price x quantity plus fee). Matching creates trades but moves nothing; a settlement batch later posts
delivery versus payment for every unsettled trade. Prices and money are integer fen.
"""

from __future__ import annotations

from django.db import models

from accounts.models import Participant
from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction


class MarketRules(models.Model):
    """An instrument's listing: whether it trades, and the reference price its bands use until it has a close.

    Every other rule (tick, lot, modes, sessions, bands, fees, calendar, who may trade) is its market's
    rulebook's (``exchange.models.markets``), read through ``exchange.selectors.rulebooks.rulebook_for``.
    """

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, primary_key=True, related_name="rules")
    tradable = models.BooleanField(default=True)
    reference_price_fen = models.BigIntegerField(
        help_text="The price bands' reference until the asset has a close of its own (fen)."
    )

    class Meta:
        verbose_name_plural = "market rules"
        constraints = [
            models.CheckConstraint(condition=models.Q(reference_price_fen__gte=1), name="rules_positive"),
        ]

    def __str__(self) -> str:
        return f"listing of {self.asset_id}"


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderMode(models.TextChoices):
    LISTING = "listing", "Listing (continuous)"
    BLOCK = "block", "Block (bulk agreement)"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"


class Order(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="orders")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=Side.choices)
    mode = models.CharField(max_length=8, choices=OrderMode.choices)
    price_fen = models.BigIntegerField()
    quantity = models.BigIntegerField()
    filled = models.BigIntegerField(default=0)
    filled_turnover_fen = models.BigIntegerField(default=0, help_text="Sum of price x quantity of its fills.")
    fee_fen = models.BigIntegerField(
        default=0, help_text="Fees charged so far: fee(filled turnover), so the fills' fees add up to one rounding."
    )
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    end_reason = models.CharField(max_length=32, blank=True, help_text="filled, cancelled, session_close")
    client_order_id = models.CharField(max_length=64)
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="order")
    trading_mode = models.CharField(
        max_length=12,
        default="continuous",
        db_default="continuous",
        help_text="continuous (the book), listing (a listing or a pick), block (an offer or an acceptance), auction",
    )
    counterparty = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="offers_received",
        help_text="A block offer's named counterparty (none: a public block listing).",
    )
    partial_allowed = models.BooleanField(
        default=True, db_default=True, help_text="A listing may be picked in part."
    )
    auction = models.ForeignKey(
        "exchange.Auction", on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
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
    trading_mode = models.CharField(
        max_length=12, default="continuous", db_default="continuous", help_text="The trading mode it was made in."
    )
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="buy_trades")
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sell_trades")
    aggressor = models.CharField(max_length=4, choices=Side.choices, help_text="The side of the incoming order.")
    price_fen = models.BigIntegerField()
    quantity = models.BigIntegerField()
    turnover_fen = models.BigIntegerField(help_text="price x quantity")
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
    volume = models.BigIntegerField(default=0, help_text="Tonnes traded, listing and block.")
    turnover_fen = models.BigIntegerField(default=0)
    trades = models.IntegerField(default=0)
    close_from_trades = models.BooleanField(
        help_text="False when the day had no listing trade and kept the previous close."
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


class AuctionStatus(models.TextChoices):
    OPEN = "open", "Open for bids"
    CLOSED = "closed", "Closed and allocated"


class Auction(models.Model):
    """A one-way auction: an initiator offers a quantity with a reserve price; bidders bid sealed within the
    window; at the close the quantity is allocated by price then time (``exchange.services.auctions``)."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="auctions")
    initiator = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="auctions")
    quantity = models.BigIntegerField()
    reserve_price_fen = models.BigIntegerField()
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    pricing = models.CharField(max_length=12, help_text="pay_as_bid or clearing, from the rulebook at announcement.")
    status = models.CharField(max_length=8, choices=AuctionStatus.choices, default=AuctionStatus.OPEN)
    sold = models.BigIntegerField(default=0)
    clearing_price_fen = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0, reserve_price_fen__gt=0, sold__gte=0, sold__lte=models.F("quantity"))
                & models.Q(closes_at__gt=models.F("opens_at")),
                name="auction_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"auction {self.pk}: {self.quantity} {self.asset_id} from {self.reserve_price_fen}"


class SettlementStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    EMPTY = "empty", "Nothing to settle"


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
        verbose_name_plural = "settlement batches"

    def __str__(self) -> str:
        return f"settlement batch {self.pk}: {self.trades_count} trades"
