"""Orders of the continuous book: placing one with continuous matching, and cancelling what is unfilled.

An order reserves what it may need before it can trade: a sell holds the serial units, a buy holds
cash for price x quantity plus the fee. Orders of one asset match under that asset's book lock (a
PostgreSQL advisory lock), so one book is serialised while different assets match in parallel. Matching
follows price-time priority, trades at the resting order's price, fills partially, and never matches a
participant's own orders with each other. Trades move nothing: settlement does (``settlement.py``).
The rules an order must meet are ``instrument_rules.py``'s.

Locks are taken in the order ``exchange.locks`` gives: the book, then balance rows, then hold rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext

from accounts.actors import Actor
from core import clock
from core.db import pipeline
from core.errors import Conflict, NotFound
from core.errors import translatable as _
from core.money import fen_to_str
from exchange.bulk import bulk_update
from exchange.engine.book import engine_book
from exchange.errors import InvalidState
from exchange.locks import lock_balances, lock_book, lock_holds
from exchange.models import (
    Account,
    Asset,
    BookWriter,
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OrderMode,
    OrderStatus,
    ProceedsAdvance,
    Side,
    Trade,
)
from exchange.selectors.prices import previous_close
from exchange.services.audit import audit_record, service
from exchange.services.cash import cash_asset
from exchange.services.fills import Fill, fill, fills_save, trades_of
from exchange.services.instrument_rules import (
    InstrumentRules,
    check_order,
    check_order_rules,
    check_position_limit,
    decide_order,
    hold_quantity,
    instrument_rules,
)
from exchange.services.ledger import hold_place, holds_release
from exchange.services.proceeds import buy_hold_place

CONTINUOUS = "continuous"


class DuplicateClientOrderId(Conflict):
    code = "duplicate_client_order_id"
    default_message = _("You used this client order id for a different order.")


class OrderNotFound(NotFound):
    code = "order_not_found"
    default_message = _("No such order, or not yours.")


class OrderNotOpen(InvalidState):
    code = "order_not_open"
    default_message = _("The order is no longer open.")


class OrderNotCancellable(InvalidState):
    code = "order_not_cancellable"
    default_message = _("A sale of pledged units on enforcement can't be cancelled; it ends at the session close.")


# --- orders ----------------------------------------------------------------------------------------------
@dataclass
class Placed:
    order: Order
    trades: list[Trade] = field(default_factory=list)


@service
def order_place(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    side: str,
    mode: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    at: datetime | None = None,
) -> Placed:
    """Place a limit order: check the market's rules, reserve, then match against the book.

    The client order id is unique per participant: a second order under it is refused
    (``duplicate_client_order_id``), whatever it asks for.
    """
    check_order(actor, account, side, mode, client_order_id)
    # Under the book's lock, so that a racing twin on this book has either committed (and is refused) or waits.
    lock_book(asset.pk)
    refuse_duplicate(actor, client_order_id)
    moment = at or clock.now()
    rules = instrument_rules(asset, clock.trading_day(moment))
    reference = previous_close(asset, clock.trading_day(moment), rules)
    decide_order(actor, rules, reference, side, mode, price_fen, quantity, moment)
    if side == Side.BUY:
        check_position_limit(account.participant_id, asset, rules.rulebook, quantity)
    try:
        # Pipeline mode: the writes (hold, blocks, balances, trades, the audit event) go out together.
        with transaction.atomic(), pipeline():
            return _place_and_match(
                actor, account, asset, rules, side, mode, price_fen, quantity, client_order_id, moment
            )
    except IntegrityError:
        # The same client order id committed by a twin on another book (order_client_id_unique).
        refuse_duplicate(actor, client_order_id)
        raise


def order_replay(
    actor: Actor, account_id: int, side: str, mode: str, price_fen: int, quantity: int, client_order_id: str
) -> Placed | None:
    """A retried request (same Idempotency-Key) whose order committed before its answer was lost: the order as
    placed, with the trades it made when placed. None: no such order, or one on other terms (which
    ``order_place`` refuses, ``duplicate_client_order_id``)."""
    if actor.participant_id is None:
        return None
    order = Order.objects.filter(participant_id=actor.participant_id, client_order_id=client_order_id).first()
    if order is None:
        return None
    if (order.account_id, order.side, order.mode, order.price_fen, order.quantity) != (
        account_id,
        side,
        mode,
        price_fen,
        quantity,
    ):
        return None
    own = "buy_order_id" if order.side == Side.BUY else "sell_order_id"
    return Placed(
        order=order, trades=list(Trade.objects.filter(**{own: order.pk}, aggressor=order.side).order_by("id"))
    )


def refuse_duplicate(actor: Actor, client_order_id: str) -> None:
    """The client order id is a uniqueness rule, not a replay: a second order under it is refused.

    Retrying a request safely is what the Idempotency-Key is for (``exchange.services.idempotency``).
    """
    existing = (
        Order.objects.filter(participant_id=actor.member_participant_id, client_order_id=client_order_id)
        .values_list("pk", flat=True)
        .first()
    )
    if existing is not None:
        raise DuplicateClientOrderId(details={"client_order_id": client_order_id, "order": existing})


def _place_and_match(
    actor: Actor,
    account: Account,
    asset: Asset,
    rules: InstrumentRules,
    side: str,
    mode: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    moment: datetime,
    *,
    hold: Hold | None = None,
    participant_id: int | None = None,
) -> Placed:
    """Reserve (or take over ``hold``), match, and record the order for ``participant_id`` (default: the actor's)."""
    participant_id = participant_id or actor.member_participant_id
    reference = f"order:{participant_id}:{client_order_id}"
    if hold is None and side == Side.SELL:
        hold = hold_place(account=account, asset=asset, quantity=quantity, kind=HoldKind.ORDER, reference=reference)
    elif hold is None:
        hold = buy_hold_place(
            actor=actor,
            account=account,
            cash=cash_asset(),
            quantity=hold_quantity(rules, side, mode, price_fen, quantity),
            reference=reference,
        )
    order = new_order(participant_id, account, asset, side, mode, price_fen, quantity, client_order_id, hold, moment)
    fills, resting = _match(order, rules)
    order.save(force_insert=True)
    note_foreign_write([asset.pk])
    trades = trades_of(order, fills)
    if trades:
        fills_save(trades, resting)
    audit_record(actor=actor, action="order.place", obj=order, payload=place_payload(order, hold, trades), at=moment)
    return Placed(order=order, trades=trades)


def new_order(
    participant_id: int,
    account: Account,
    asset: Asset,
    side: str,
    mode: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    hold: Hold,
    moment: datetime,
    **fields: Any,
) -> Order:
    """An order of the continuous book as placed (not saved), reserving with ``hold``."""
    return Order(
        participant_id=participant_id,
        account=account,
        asset=asset,
        side=side,
        mode=mode,
        price_fen=price_fen,
        quantity=quantity,
        client_order_id=client_order_id,
        hold=hold,
        trading_day=clock.trading_day(moment),
        created_at=moment,
        **fields,
    )


def place_payload(order: Order, hold: Hold, trades: list[Trade]) -> dict[str, Any]:
    """The ``order.place`` audit event's payload."""
    side = order.side
    return {
        "order": order.pk,
        "client_order_id": order.client_order_id,
        "account": order.account.number,
        "asset": order.asset.code,
        "side": side,
        "mode": order.mode,
        "price": fen_to_str(order.price_fen),
        "quantity": order.quantity,
        "hold": hold.pk,
        "reserved": hold.quantity,
        "trades": [
            [t.pk, t.sell_order_id if side == Side.BUY else t.buy_order_id, fen_to_str(t.price_fen), t.quantity]
            for t in trades
        ],
    }


def enforcement_order_place(
    *,
    actor: Actor,
    hold: Hold,
    account: Account,
    asset: Asset,
    price_fen: int,
    client_order_id: str,
    at: datetime | None = None,
) -> Placed:
    """Offer pledged units on the exchange for a lender enforcing a pledge (``pledges.py`` calls this).

    The sell order takes over ``hold`` (a ``pledge`` hold on exactly the pledged blocks) instead of
    reserving units itself, and is the borrower's order (the account's participant): the market's
    rules (session, tick, lot, mode, price band) apply as to any order, it matches in the book like any
    order and its trades settle in the ordinary settlement batches, which pay the proceeds into the
    borrower's account. The order's mode follows its size (block at or above the block threshold).
    Unlike an ordinary order it can't be cancelled, and when it ends its unsold units stay held by the
    pledge hold: ``pledges.py`` decides where they go. Runs in the caller's transaction.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("enforcement_order_place must run inside the pledge service's transaction")
    if hold.kind != HoldKind.PLEDGE or hold.status != HoldStatus.ACTIVE or hold.account_id != account.pk:
        raise InvalidState(
            gettext("The order must take over an active pledge hold on the account."), details={"hold": hold.pk}
        )
    moment = at or clock.now()
    rules = instrument_rules(asset, clock.trading_day(moment))
    quantity = hold.remaining
    mode = OrderMode.BLOCK if quantity >= rules.block_threshold else OrderMode.LISTING
    reference = previous_close(asset, clock.trading_day(moment), rules)
    check_order_rules(rules, Side.SELL, mode, price_fen, quantity, moment, reference)
    lock_book(asset.pk)
    return _place_and_match(
        actor,
        account,
        asset,
        rules,
        Side.SELL,
        mode,
        price_fen,
        quantity,
        client_order_id,
        moment,
        hold=hold,
        participant_id=account.participant_id,
    )


def _match(order: Order, rules: InstrumentRules) -> tuple[list[Fill], list[Order]]:
    """Fill the incoming order against the book; return its fills and the resting orders touched.

    Price-time priority, at the resting order's price (``fills.fill``); a participant's own orders are passed over.
    """
    fills: list[Fill] = []
    touched: list[Order] = []
    mode_rules = rules.mode_rules(order.mode)  # its fees (InstrumentRules.fee_bp)
    for resting in _resting(order):
        if order.remaining == 0:
            break
        fills.append(
            fill(
                resting,
                order,
                min(order.remaining, resting.remaining),
                price_fen=resting.price_fen,
                mode_rules=mode_rules,
                moment=order.created_at,
            )
        )
        touched.append(resting)
    return fills, touched


def _resting(order: Order) -> Iterator[Order]:
    """The resting orders an incoming order may trade with, in priority order: from the matching engine's book
    in memory when the engine applies the order (``exchange.engine``), else from the database, a page at a time."""
    engine = engine_book(order.asset_id)
    if engine is not None:
        yield from engine.crossing(order)
        return
    opposite = Side.SELL if order.side == Side.BUY else Side.BUY
    book = Order.objects.filter(
        asset_id=order.asset_id, side=opposite, status=OrderStatus.OPEN, mode=order.mode, trading_mode=CONTINUOUS
    ).exclude(participant_id=order.participant_id)
    if order.side == Side.BUY:
        book = book.filter(price_fen__lte=order.price_fen).order_by("price_fen", "id")
    else:
        book = book.filter(price_fen__gte=order.price_fen).order_by("-price_fen", "id")
    seen = 0
    while order.remaining > 0:
        page = list(book[seen : seen + 100])
        if not page:
            return
        seen += len(page)
        for resting in page:
            if order.remaining == 0:
                return
            yield resting


def note_foreign_write(asset_ids: Iterable[int]) -> None:
    """Tell the matching engine owning a book (if any) that its book changed outside it, in this transaction:
    it rebuilds the book from the database before its next batch (``exchange.models.BookWriter``). A write the
    engine makes itself, with its book active, needs no note."""
    foreign = [a for a in asset_ids if engine_book(a) is None]
    if foreign:
        BookWriter.objects.filter(asset_id__in=foreign).update(foreign_writes=F("foreign_writes") + 1)


def _unsettled_needs(orders: list[Order]) -> dict[int, int]:
    """What each order's hold must keep for its filled but unsettled trades (units, or cash with fees)."""
    needs: dict[int, int] = {}
    buys = [o.pk for o in orders if o.side == Side.BUY]
    sells = [o.pk for o in orders if o.side == Side.SELL]
    unsettled = Trade.objects.filter(settlement_batch__isnull=True)  # type: ignore[misc]  # TradeManager annotates it; django-stubs see only fields
    if buys:
        for row in (
            unsettled.filter(buy_order_id__in=buys)
            .values("buy_order_id")
            .annotate(t=Sum("turnover_fen"), f=Sum("buyer_fee_fen"))
        ):
            needs[row["buy_order_id"]] = row["t"] + row["f"]
        # Less what was paid from the hold already, before settlement (exchange.services.proceeds).
        for row in (
            ProceedsAdvance.objects.filter(trade__buy_order_id__in=buys, trade__settlement__isnull=True)
            .values("trade__buy_order_id")
            .annotate(a=Sum("amount_fen"))
        ):
            needs[row["trade__buy_order_id"]] -= row["a"]
    if sells:
        for row in unsettled.filter(sell_order_id__in=sells).values("sell_order_id").annotate(q=Sum("quantity")):
            needs[row["sell_order_id"]] = row["q"]
    return needs


def end_orders(orders: list[Order], reason: str, moment: datetime) -> dict[int, int]:
    """Cancel open orders: release all of each hold but what unsettled trades still need.

    The holds' balances and rows are locked before anything is read, so a settlement committing
    meanwhile is either wholly seen or wholly not.
    """
    lock_balances({(o.hold.account_id, o.hold.asset_id) for o in orders})
    holds = lock_holds(o.hold_id for o in orders)
    needs = _unsettled_needs(orders)
    releases = []
    for order in orders:
        hold = holds[order.hold_id]
        keep = needs.get(order.pk, 0)
        if hold.kind == HoldKind.PLEDGE:
            keep = hold.remaining  # pledged units sold on enforcement stay frozen; the pledge decides where they go
        if hold.status == HoldStatus.ACTIVE and hold.remaining > keep:
            releases.append((hold, hold.remaining - keep))
        order.status, order.end_reason, order.ended_at = OrderStatus.CANCELLED, reason, moment
    released = holds_release(releases)
    bulk_update(
        Order._meta.db_table,
        [("status", "text"), ("end_reason", "text"), ("ended_at", "timestamptz")],
        [(o.pk, o.status, o.end_reason, o.ended_at) for o in orders],
    )
    note_foreign_write({o.asset_id for o in orders if o.trading_mode == CONTINUOUS})
    return released


@service
def order_cancel(*, actor: Actor, order: Order) -> Order:
    """Cancel what is unfilled of one of your open orders; filled parts still settle."""
    actor.require_can_act()
    if not actor.owns(order.participant_id):
        raise OrderNotFound(details={"order": order.pk})
    lock_book(order.asset_id)
    current = Order.objects.select_related("hold").get(pk=order.pk)
    if current.status != OrderStatus.OPEN:
        raise OrderNotOpen(details={"order": order.pk, "status": current.status})
    if current.hold.kind == HoldKind.PLEDGE:
        raise OrderNotCancellable(details={"order": order.pk})
    moment = clock.now()
    released = end_orders([current], "cancelled", moment)
    audit_record(
        actor=actor,
        action="order.cancel",
        obj=current,
        payload={
            "order": current.pk,
            "filled": current.filled,
            "unfilled": current.remaining,
            "released": released.get(current.hold_id, 0),
        },
        at=moment,
    )
    return current
