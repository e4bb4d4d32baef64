"""An instrument's continuous book in memory: price levels kept sorted, orders in time priority within a level.

The book holds the open continuous orders of one asset as ``Order`` objects, in two books per side (listing-size
orders and block orders match only among themselves). It is rebuilt from the database (open orders by price,
then id) when an engine takes the book and whenever something outside the engine wrote to it.

While an engine applies an order it makes its book the *active* book (``active``): the trading service's
matching (``exchange.services.orders._match``) then reads the resting orders from it instead of the database.
Matching works on copies of the resting orders; the engine puts the copies back (``settle``) once the order's
savepoint has been released, so an order refused half way leaves the book as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sortedcontainers import SortedDict

from exchange.models import Order, OrderStatus, Side, TradingMode

CONTINUOUS = TradingMode.CONTINUOUS

_active: ContextVar[Book | None] = ContextVar("greenledger_engine_book", default=None)


class Book:
    def __init__(self, asset_id: int) -> None:
        self.asset_id = asset_id
        # (order mode, side) -> price -> {order id: order}, the dict in time (insertion = id) order.
        self.levels: dict[tuple[str, str], SortedDict] = {}
        self.orders: dict[int, Order] = {}
        # The copies handed to the order being applied (``crossing``), kept or dropped when it ends.
        self.pending: list[Order] = []

    # --- building --------------------------------------------------------------------------------------
    @classmethod
    def load(cls, asset_id: int) -> Book:
        """The book as the database has it: every open continuous order of the asset, by id."""
        book = cls(asset_id)
        for order in Order.objects.filter(asset_id=asset_id, status=OrderStatus.OPEN, trading_mode=CONTINUOUS).order_by(
            "id"
        ):
            book.add(order)
        return book

    def add(self, order: Order) -> None:
        levels = self.levels.setdefault((order.mode, order.side), SortedDict())
        levels.setdefault(order.price_fen, {})[order.pk] = order
        self.orders[order.pk] = order

    def remove(self, order_id: int) -> None:
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        levels = self.levels[(order.mode, order.side)]
        level = levels[order.price_fen]
        del level[order_id]
        if not level:
            del levels[order.price_fen]

    def settle(self, order: Order) -> None:
        """Put an order as it now is into the book: kept (with its fills) while open, else taken out."""
        if order.status != OrderStatus.OPEN or order.trading_mode != CONTINUOUS:
            self.remove(order.pk)
        elif order.pk in self.orders:
            self.orders[order.pk] = order
            self.levels[(order.mode, order.side)][order.price_fen][order.pk] = order
        else:
            self.add(order)

    def begin(self) -> None:
        self.pending = []

    def keep(self, order: Order) -> None:
        """The order applied and its savepoint released: its fills on the resting orders, and itself, go in."""
        for resting in self.pending:
            self.settle(resting)
        self.pending = []
        self.settle(order)

    def discard(self) -> None:
        """The order was refused (its savepoint rolled back): the book stays as it was."""
        self.pending = []

    # --- reading ---------------------------------------------------------------------------------------
    def crossing(self, order: Order) -> Iterator[Order]:
        """Copies of the resting orders the incoming order may trade with, best price first, then oldest;
        a participant's own orders are passed over."""
        opposite = Side.SELL if order.side == Side.BUY else Side.BUY
        levels = self.levels.get((order.mode, opposite))
        if not levels:
            return
        # Only the levels that cross, walked in place (no copy of the whole side's prices per order).
        if opposite == Side.SELL:
            prices = levels.irange(maximum=order.price_fen)
        else:
            prices = levels.irange(minimum=order.price_fen, reverse=True)
        for price in prices:
            for resting in list(levels[price].values()):
                if resting.participant_id != order.participant_id:
                    taken = copy.copy(resting)
                    self.pending.append(taken)
                    yield taken

    def snapshot(self) -> list[tuple[str, str, int, int, int]]:
        """(mode, side, price, order id, remaining) of every resting order in priority order, to compare books."""
        rows: list[tuple[str, str, int, int, int]] = []
        for (mode, side), levels in sorted(self.levels.items()):
            prices = list(levels.keys()) if side == Side.SELL else list(reversed(levels.keys()))
            for price in prices:
                rows.extend((mode, side, price, o.pk, o.quantity - o.filled) for o in levels[price].values())
        return rows

    def __len__(self) -> int:
        return len(self.orders)

    # --- the book the trading service matches against -----------------------------------------------------
    @contextmanager
    def active(self) -> Iterator[Book]:
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)


def engine_book(asset_id: int) -> Book | None:
    """The engine's book of this asset when the caller runs inside the engine, else None."""
    book = _active.get()
    return book if book is not None and book.asset_id == asset_id else None
