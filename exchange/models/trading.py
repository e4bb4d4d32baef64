"""The exchange: market rules per asset, orders, trades, daily prices and settlement batches.

Orders reserve what they may need through holds (a sell holds serial units, a buy holds cash for
price x quantity plus fee). Matching creates trades but moves nothing; a settlement batch later posts
delivery versus payment for every unsettled trade. Prices and money are integer fen.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

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
        help_text=_("The price bands' reference until the asset has a close of its own (fen).")
    )

    class Meta:
        verbose_name_plural = _("market rules")
        constraints = [
            models.CheckConstraint(condition=models.Q(reference_price_fen__gte=1), name="rules_positive"),
        ]

    def __str__(self) -> str:
        return f"listing of {self.asset_id}"


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
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="orders", db_index=False
    )  # order_participant_idx leads with it
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
    trading_mode = models.CharField(
        max_length=12,
        default="continuous",
        db_default="continuous",
        help_text=_("continuous (the book), listing (a listing or a pick), block (an offer or an acceptance), auction"),
    )
    counterparty = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="offers_received",
        help_text=_("A block offer's named counterparty (none: a public block listing)."),
    )
    partial_allowed = models.BooleanField(
        default=True, db_default=True, help_text=_("A listing may be picked in part.")
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


class TradeManager(models.Manager["Trade"]):
    """Trades with their settlement batch id (``settlement_batch`` and ``settlement_batch_id``), read from
    the settlement link table by a left join that PostgreSQL drops when a query doesn't use it."""

    def get_queryset(self) -> models.QuerySet[Trade]:
        return (
            super()  # type: ignore[no-redef]  # django-stubs: annotate() names clash with Trade's properties (fine at runtime)
            .get_queryset()
            .annotate(settlement_batch=models.F("settlement__batch"), settlement_batch_id=models.F("settlement__batch"))
        )


class Trade(models.Model):
    """A match between a buy and a sell order. Moves nothing until a settlement batch settles it."""

    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="trades", db_index=False
    )  # trade_day_idx leads with it
    mode = models.CharField(max_length=8, choices=OrderMode.choices)
    trading_mode = models.CharField(
        max_length=12, default="continuous", db_default="continuous", help_text=_("The trading mode it was made in.")
    )
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

    objects = TradeManager()

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
        ]

    def __str__(self) -> str:
        return f"trade {self.pk} {self.quantity} {self.asset_id} @ {self.price_fen}"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__["_settlement_batch_id"] = None  # a trade made here is not settled yet

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Trade:
        trade = super().from_db(db, field_names, values)
        trade.__dict__.pop("_settlement_batch_id", None)  # read from the link table unless annotated
        return trade

    # Where the trade settled, read from its TradeSettlement row. ``Trade.objects`` annotates both names
    # (so they filter and order as the column did: ``settlement_batch__isnull=True`` is "unsettled");
    # an instance made otherwise (``create``) reads the link row when asked.
    @property
    def settlement_batch_id(self) -> int | None:
        if "_settlement_batch_id" not in self.__dict__:
            self.__dict__["_settlement_batch_id"] = (
                TradeSettlement.objects.filter(trade_id=self.pk).values_list("batch_id", flat=True).first()
                if self.pk
                else None
            )
        return self.__dict__["_settlement_batch_id"]

    @settlement_batch_id.setter
    def settlement_batch_id(self, value: int | None) -> None:
        self.__dict__["_settlement_batch_id"] = value

    @property
    def settlement_batch(self) -> SettlementBatch | None:
        batch_id = self.settlement_batch_id
        return None if batch_id is None else SettlementBatch.objects.get(pk=batch_id)

    @settlement_batch.setter
    def settlement_batch(self, value: SettlementBatch | int | None) -> None:
        # The manager's annotation sets the id; code may set a batch.
        self.__dict__["_settlement_batch_id"] = value.pk if isinstance(value, SettlementBatch) else value


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
    pricing = models.CharField(max_length=12, help_text=_("pay_as_bid or clearing, from the rulebook at announcement."))
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
    # Every trade of a trading day before this one is settled (the watermark): the next run reads the trades
    # of this day and later only, and a trade of an earlier day is refused (``greenledger_trade_after_watermark``).
    # Null before the watermark existed; a run that couldn't advance it carries the previous one forward.
    settled_before = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("settlement batches")

    def __str__(self) -> str:
        return f"settlement batch {self.pk}: {self.trades_count} trades"

    @property
    def trades(self) -> models.QuerySet[Trade]:
        """The trades this batch settled (through their ``TradeSettlement`` rows)."""
        return Trade.objects.filter(settlement_batch=self.pk)  # type: ignore[misc]  # TradeManager annotates it; django-stubs see only fields


class TradeSettlement(models.Model):
    """That a trade settled, and in which batch: one narrow row per trade, written once by settlement.

    The primary key is the trade, so a trade settles once (a second row is a unique violation), and the
    rows are append-only (a trigger). Settling inserts these rows instead of updating the wide, indexed
    trade rows, which stay immutable. The references are checked per statement by a trigger
    (``exchange/sql/greenledger_trade_settlement.sql``), not per row by deferred foreign keys: a batch of
    100,000 trades costs one join, not 200,000 checks at commit. Trades and batches are never deleted.
    """

    trade = models.OneToOneField(
        Trade, on_delete=models.DO_NOTHING, primary_key=True, db_constraint=False, related_name="settlement"
    )
    # Indexed: the settlement's participant events (``greenledger_event_concerned``) and a batch's trade list
    # read a batch's rows, which must not cost a scan of every trade ever settled.
    batch = models.ForeignKey(
        SettlementBatch,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="trade_settlements",
    )

    def __str__(self) -> str:
        return f"trade {self.trade_id} settled in batch {self.batch_id}"


class ProceedsAdvance(models.Model):
    """Cash of a sale paid to the seller before the trade settles, so that it can buy the same day.

    A buy that needs more cash than the account has available draws on the proceeds of its unsettled sales
    (trades whose units and cash are both held, so they are certain to settle): that much of the trade's cash
    leg moves now from the buyer's order hold to the seller, and settlement later pays the rest. One row per
    trade and advance, written once (append-only); the advanced cash can't be withdrawn until the trade has
    settled (``exchange.services.proceeds``).
    """

    trade = models.ForeignKey(Trade, on_delete=models.PROTECT, related_name="proceeds_advances")
    account = models.ForeignKey(
        "exchange.Account", on_delete=models.PROTECT, related_name="+", help_text=_("The seller's account paid.")
    )
    amount_fen = models.BigIntegerField()
    transaction = models.ForeignKey("exchange.Transaction", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="proceeds_advance_positive")]
        indexes = [
            models.Index(fields=["account", "trade"], name="proceeds_advance_account_idx"),
            # what is not yet withdrawable is read from the settlement watermark's day on (services.proceeds)
            models.Index(fields=["account", "created_at"], name="proceeds_advance_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.amount_fen} fen of trade {self.trade_id} advanced to account {self.account_id}"


class BookWriter(models.Model):
    """Who writes an instrument's continuous book: the matching engine that owns it (``exchange.engine``).

    ``epoch`` grows by one each time an engine takes the book over; an engine writes only while the row still
    carries its epoch (a fencing token), so an engine that lost the book can't write to it. ``foreign_writes``
    grows by one in the transaction of every write to the book made outside the engine (the session-close job,
    a pledge put up for sale, an order placed or cancelled directly): the engine reads it under the book lock at
    each batch and rebuilds its book from the database when it changed.
    """

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, primary_key=True, related_name="book_writer")
    owner = models.CharField(max_length=128, blank=True, help_text=_("The engine process owning the book (host:pid)."))
    epoch = models.BigIntegerField(default=0)
    foreign_writes = models.BigIntegerField(default=0)
    taken_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"book {self.asset_id}: {self.owner or 'no engine'} (epoch {self.epoch})"
