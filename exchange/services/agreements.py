"""The agreement modes of China's exchanges: listing agreement (挂牌协议) and block agreement (大宗协议).

- **Listing agreement**: a participant posts a listing (buy or sell, price, quantity, partial fills allowed or
  not); the market shows the best five price levels per side with each level's listings
  (``exchange.selectors.agreements.listing_book``); a counterparty picks a listing, or a quantity at a price
  level (filled in time order within it). A pick and the listing's fill are one transaction under the
  instrument's book lock, so of two counterparties picking the same listing at once one fills and the other is
  refused (``listing_not_available``); nothing is ever filled twice.
- **Block agreement**: an offer to a named counterparty (or a public block listing) of at least the rulebook's
  block minimum, within its band around the previous close and in its sessions (13:00-15:00 on the national
  markets); the counterparty accepts it whole, declines it, or counters with a price of its own. Open offers
  end at the session close.

Listings, picks, offers and acceptances are ``Order`` rows with their ``trading_mode`` (``listing`` or
``block``), reserving through holds as every order does; each fill (``fills.py``, the one routine of every mode)
is a ``Trade`` that the one settlement batch settles after the close (``settlement.py``). Every rule is read from
the market's rulebook in effect.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import Participant
from core import clock
from core.errors import InvalidInput, NotFound, translatable
from core.limits import MAX_PRICE_FEN, MAX_QUANTITY
from core.money import fen_to_str
from exchange.errors import InvalidState, RuleViolation
from exchange.locks import lock_book
from exchange.models import (
    Account,
    Asset,
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OrderMode,
    OrderStatus,
    Rulebook,
    RulebookMode,
    Side,
    TradingMode,
)
from exchange.selectors.prices import previous_close
from exchange.services.audit import audit_record, service
from exchange.services.cash import cash_asset
from exchange.services.fills import fill, fills_save, trade_of
from exchange.services.instrument_rules import (
    InstrumentRules,
    InvalidLot,
    InvalidTick,
    MarketClosed,
    ModeNotEnabled,
    PriceOutOfBand,
    band_around,
    check_eligible,
    check_position_limit,
    check_trader,
    fee_for,
    instrument_rules,
)
from exchange.services.ledger import hold_place
from exchange.services.orders import Placed, end_orders, refuse_duplicate
from exchange.services.proceeds import buy_hold_place
from exchange.services.sessions import session_open


# --- refusals --------------------------------------------------------------------------------------------
class BelowMinimumSize(RuleViolation):
    code = "below_minimum_size"
    default_message = translatable(
        "The quantity is below the trading mode's minimum (block agreements: at least 100,000 t)."
    )


class AboveMaximumSize(RuleViolation):
    code = "above_maximum_size"
    default_message = translatable(
        "The quantity is above the trading mode's maximum (listings: below the block minimum)."
    )


class ListingNotAvailable(InvalidState):
    code = "listing_not_available"
    default_message = translatable(
        "The listing is no longer open (picked by someone else, cancelled or ended at the close)."
    )


class ListingNotFound(NotFound):
    code = "listing_not_found"
    default_message = translatable("No such open listing or offer.")


class OwnListing(RuleViolation):
    code = "own_listing"
    default_message = translatable("You can't pick your own listing or accept your own offer.")


class PartialNotAllowed(RuleViolation):
    code = "partial_not_allowed"
    default_message = translatable("This listing can only be picked whole.")


class CounterpartyNotFound(NotFound):
    code = "counterparty_not_found"
    default_message = translatable("No such participant to offer the block to.")


class NotYourOffer(NotFound):
    code = "offer_not_found"
    default_message = translatable("No such block offer addressed to you.")


# --- shared checks ---------------------------------------------------------------------------------------
def _mode_rules(rules: InstrumentRules, mode: str) -> RulebookMode:
    found = rules.mode(mode)
    if found is None:
        raise ModeNotEnabled(details={"market": rules.rulebook.market.code, "mode": mode})
    return found


def _check_mode(
    rules: InstrumentRules, mode: str, asset: Asset, price_fen: int, quantity: int, moment: datetime
) -> RulebookMode:
    """The rulebook's rules of ``mode`` for this price and quantity at ``moment``: enabled, in session, size,
    tick, lot and band."""
    mode_rules = _mode_rules(rules, mode)
    sessions = rules.mode_sessions(mode)
    if not session_open(sessions, moment):
        raise MarketClosed(
            gettext("The market is closed for %(mode)s trading; it trades %(sessions)s China time on trading days.")
            % {"mode": mode, "sessions": sessions.sessions},
            details={"mode": mode, "sessions": sessions.sessions, "at": moment.astimezone(clock.MARKET_TZ).isoformat()},
        )
    if not 0 < quantity <= MAX_QUANTITY:
        raise InvalidInput(gettext("A quantity is a positive whole number of tonnes."), details={"quantity": quantity})
    if not 0 < price_fen <= MAX_PRICE_FEN:
        raise InvalidInput(gettext("A price is positive."), details={"price": fen_to_str(price_fen)})
    if quantity < mode_rules.min_quantity:
        raise BelowMinimumSize(details={"mode": mode, "quantity": quantity, "minimum": mode_rules.min_quantity})
    if mode_rules.max_quantity is not None and quantity > mode_rules.max_quantity:
        raise AboveMaximumSize(details={"mode": mode, "quantity": quantity, "maximum": mode_rules.max_quantity})
    if price_fen % rules.tick_fen:
        raise InvalidTick(details={"price": fen_to_str(price_fen), "tick": fen_to_str(rules.tick_fen)})
    if quantity % rules.lot:
        raise InvalidLot(details={"quantity": quantity, "lot": rules.lot})
    reference = previous_close(asset, clock.trading_day(moment), rules)
    low, high = band_around(reference, mode_rules.band_bp)
    if not low <= price_fen <= high:
        raise PriceOutOfBand(
            details={
                "mode": mode,
                "price": fen_to_str(price_fen),
                "low": fen_to_str(low),
                "high": fen_to_str(high),
                "previous_close": fen_to_str(reference),
            }
        )
    return mode_rules


def _reserve(
    actor: Actor,
    account: Account,
    asset: Asset,
    side: str,
    price_fen: int,
    quantity: int,
    buyer_fee_bp: int,
    reference: str,
):
    if side == Side.SELL:
        return hold_place(account=account, asset=asset, quantity=quantity, kind=HoldKind.ORDER, reference=reference)
    notional = price_fen * quantity
    # A buy may draw on the proceeds of the account's unsettled sales (cash from sales buys on T).
    return buy_hold_place(
        actor=actor,
        account=account,
        cash=cash_asset(),
        quantity=notional + fee_for(notional, buyer_fee_bp),
        reference=reference,
    )


def _new_order(
    actor: Actor,
    account: Account,
    asset: Asset,
    side: str,
    trading_mode: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    moment: datetime,
    mode_rules: RulebookMode,
    rulebook: Rulebook,
    **extra,
) -> Order:
    """Record an order of the agreement modes and reserve what it needs; a buy first meets the rulebook's
    position limit (the one place these modes check it)."""
    if side == Side.BUY:
        check_position_limit(account.participant_id, asset, rulebook, quantity)
    participant_id = actor.member_participant_id
    hold = _reserve(
        actor,
        account,
        asset,
        side,
        price_fen,
        quantity,
        mode_rules.buyer_fee_bp,
        f"order:{participant_id}:{client_order_id}",
    )
    order = Order(
        participant_id=participant_id,
        account=account,
        asset=asset,
        side=side,
        mode=OrderMode.BLOCK if trading_mode == TradingMode.BLOCK else OrderMode.LISTING,
        trading_mode=trading_mode,
        price_fen=price_fen,
        quantity=quantity,
        client_order_id=client_order_id,
        hold=hold,
        trading_day=clock.trading_day(moment),
        created_at=moment,
        **extra,
    )
    order.save(force_insert=True)
    return order


def _start(actor: Actor, account: Account, asset: Asset, client_order_id: str, at: datetime | None):
    check_trader(actor, account)
    if not client_order_id or len(client_order_id) > 64:
        raise InvalidInput(gettext("A client order id is 1 to 64 characters."))
    lock_book(asset.pk)
    refuse_duplicate(actor, client_order_id)
    moment = at or clock.now()
    rules = instrument_rules(asset, clock.trading_day(moment))
    check_eligible(actor, rules.rulebook)
    return moment, rules


def enforcement_listing_post(
    *,
    actor: Actor,
    hold: Hold,
    account: Account,
    asset: Asset,
    price_fen: int,
    client_order_id: str,
    at: datetime | None = None,
) -> Order:
    """Offer pledged units for a lender enforcing a pledge on a market without a continuous book (the
    national markets): a sell listing (listing agreement) of the units the sale offers (``hold``), or a
    public block listing (block agreement) above the listing mode's largest size
    (``InstrumentRules.sale_mode``). ``pledges.enforcement`` calls this.

    Like ``orders.enforcement_order_place`` on a continuous market, the listing takes over ``hold`` (a
    ``pledge`` hold on exactly the pledged blocks) instead of reserving units, and is the borrower's (the
    account's participant); the rulebook's rules of the mode (session, size, tick, lot, band) apply as to any
    listing; counterparties pick it like any listing and its trades settle in the ordinary settlement
    batches, which pay the lender first (``settlement._pay_pledge_lenders``). It can't be cancelled
    (``order_cancel`` refuses a pledge hold) and when it ends at the session close its unsold units stay
    held by the pledge hold. Runs in the caller's transaction.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("enforcement_listing_post must run inside the pledge service's transaction")
    if (
        hold.kind != HoldKind.PLEDGE
        or hold.status != HoldStatus.ACTIVE
        or hold.account_id != account.pk
        or account.participant_id is None
    ):
        raise InvalidState(
            gettext("The listing must take over an active pledge hold on the account."), details={"hold": hold.pk}
        )
    moment = at or clock.now()
    rules = instrument_rules(asset, clock.trading_day(moment))
    quantity = hold.remaining
    chosen = rules.sale_mode(quantity)  # a listing while it fits the listing mode's size, else a block listing
    trading_mode = TradingMode.LISTING if chosen and chosen.mode == TradingMode.LISTING else TradingMode.BLOCK
    _check_mode(rules, trading_mode, asset, price_fen, quantity, moment)
    lock_book(asset.pk)
    listing = Order(
        participant_id=account.participant_id,
        account=account,
        asset=asset,
        side=Side.SELL,
        mode=OrderMode.BLOCK if trading_mode == TradingMode.BLOCK else OrderMode.LISTING,
        trading_mode=trading_mode,
        price_fen=price_fen,
        quantity=quantity,
        client_order_id=client_order_id,
        hold=hold,
        partial_allowed=trading_mode == TradingMode.LISTING,
        trading_day=clock.trading_day(moment),
        created_at=moment,
    )
    listing.save(force_insert=True)
    audit_record(
        actor=actor,
        action="listing.post" if trading_mode == TradingMode.LISTING else "block.offer",
        obj=listing,
        payload={
            "order": listing.pk,
            "client_order_id": client_order_id,
            "account": account.number,
            "asset": asset.code,
            "market": rules.rulebook.market.code,
            "side": Side.SELL,
            "price": fen_to_str(price_fen),
            "quantity": quantity,
            "partial_allowed": listing.partial_allowed,
            "counterparty": None,
            "hold": hold.pk,
            "enforcement": True,
        },
        at=moment,
    )
    return listing


# --- listing agreement -----------------------------------------------------------------------------------
@service
def listing_post(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    side: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    partial_allowed: bool = True,
    at: datetime | None = None,
) -> Order:
    """Post a listing (listing agreement): it rests until picked, cancelled or the session's close."""
    if side not in Side.values:
        raise InvalidInput(gettext("side is buy or sell."), details={"side": side})
    moment, rules = _start(actor, account, asset, client_order_id, at)
    mode_rules = _check_mode(rules, TradingMode.LISTING, asset, price_fen, quantity, moment)
    listing = _new_order(
        actor,
        account,
        asset,
        side,
        TradingMode.LISTING,
        price_fen,
        quantity,
        client_order_id,
        moment,
        mode_rules,
        rules.rulebook,
        partial_allowed=partial_allowed,
    )
    audit_record(
        actor=actor,
        action="listing.post",
        obj=listing,
        payload={
            "order": listing.pk,
            "client_order_id": client_order_id,
            "account": account.number,
            "asset": asset.code,
            "market": rules.rulebook.market.code,
            "side": side,
            "price": fen_to_str(price_fen),
            "quantity": quantity,
            "partial_allowed": partial_allowed,
            "hold": listing.hold_id,
            "reserved": listing.hold.quantity,
        },
        at=moment,
    )
    return listing


def _open_listing(pk: int) -> Order:
    listing = Order.objects.select_related("asset").filter(pk=pk, trading_mode=TradingMode.LISTING).first()
    if listing is None:
        raise ListingNotFound(details={"listing": pk})
    return listing


@service
def listing_pick(
    *,
    actor: Actor,
    account: Account,
    client_order_id: str,
    listing: Order | None = None,
    asset: Asset | None = None,
    side: str | None = None,
    price_fen: int | None = None,
    quantity: int | None = None,
    at: datetime | None = None,
) -> Placed:
    """Pick a listing (摘牌): the whole of ``listing`` or ``quantity`` of it; or, without ``listing``,
    ``quantity`` at the price level ``price_fen`` of the ``side`` listings (``sell``: you buy from the asks),
    filled in time order within the level. The pick is an order of the opposite side, filled at once at the
    listings' price; its fills and theirs are one transaction."""
    if listing is not None:
        asset = listing.asset
    if asset is None:
        raise InvalidInput(gettext("Name a listing, or an asset, side and price level."))
    moment, rules = _start(actor, account, asset, client_order_id, at)
    participant_id = actor.member_participant_id
    if listing is not None:
        current = Order.objects.select_related("hold").get(pk=listing.pk)
        if current.status != OrderStatus.OPEN:
            raise ListingNotAvailable(details={"listing": listing.pk, "status": current.status})
        if current.participant_id == participant_id:
            raise OwnListing(details={"listing": listing.pk})
        want = quantity if quantity is not None else current.remaining
        if want <= 0 or want > current.remaining:
            raise ListingNotAvailable(
                gettext("The listing has less left than you asked for."),
                details={"listing": listing.pk, "remaining": current.remaining, "quantity": want},
            )
        if want < current.remaining and not current.partial_allowed:
            raise PartialNotAllowed(details={"listing": listing.pk, "remaining": current.remaining})
        makers = [(current, want)]
        listing_side, level = current.side, current.price_fen
    else:
        if side not in Side.values or price_fen is None or not quantity or quantity <= 0:
            raise InvalidInput(
                gettext("A pick at a level names the listings' side, the price and a positive quantity.")
            )
        listing_side, level = side, price_fen
        makers = _take_level(asset, side, price_fen, quantity, participant_id)
        if sum(q for _, q in makers) < quantity:
            raise ListingNotAvailable(
                gettext("The level has less left than you asked for."),
                details={"price": fen_to_str(price_fen), "available": sum(q for _, q in makers), "quantity": quantity},
            )
    total = sum(q for _, q in makers)
    mode_rules = _mode_rules(rules, TradingMode.LISTING)
    # The pick meets the listing's rules of the day: session, tick, lot, band (the listing's price is in it).
    _check_mode(rules, TradingMode.LISTING, asset, level, min(total, mode_rules.max_quantity or total), moment)
    pick_side = Side.BUY if listing_side == Side.SELL else Side.SELL
    taker = _new_order(
        actor,
        account,
        asset,
        pick_side,
        TradingMode.LISTING,
        level,
        total,
        client_order_id,
        moment,
        mode_rules,
        rules.rulebook,
    )
    trades = []
    for maker, q in makers:
        done = fill(maker, taker, q, price_fen=maker.price_fen, mode_rules=mode_rules, moment=moment)
        trades.append(trade_of(taker, done, asset=asset, moment=moment))
    fills_save(trades, [taker, *[m for m, _ in makers]])
    audit_record(
        actor=actor,
        action="listing.pick",
        obj=taker,
        payload={
            "order": taker.pk,
            "client_order_id": client_order_id,
            "account": account.number,
            "asset": asset.code,
            "side": pick_side,
            "price": fen_to_str(level),
            "quantity": total,
            "hold": taker.hold_id,
            "trades": [
                [t.pk, (t.sell_order_id if pick_side == Side.BUY else t.buy_order_id), t.quantity] for t in trades
            ],
        },
        at=moment,
    )
    return Placed(order=taker, trades=trades)


def _take_level(asset: Asset, side: str, price_fen: int, quantity: int, participant_id: int) -> list[tuple[Order, int]]:
    """Listings of a price level in time order, taking ``quantity``; a whole-only listing is taken whole or
    passed over; the picker's own listings are passed over."""
    taken: list[tuple[Order, int]] = []
    left = quantity
    level = (
        Order.objects.filter(
            asset=asset, side=side, price_fen=price_fen, status=OrderStatus.OPEN, trading_mode=TradingMode.LISTING
        )
        .exclude(participant_id=participant_id)
        .select_related("hold")
        .order_by("id")
    )
    for listing in level:
        if left == 0:
            break
        q = min(left, listing.remaining)
        if q < listing.remaining and not listing.partial_allowed:
            continue
        taken.append((listing, q))
        left -= q
    return taken


# --- block agreement -------------------------------------------------------------------------------------
@service
def block_offer(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    side: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    counterparty: Participant | None = None,
    at: datetime | None = None,
) -> Order:
    """Offer a block (block agreement) to a named counterparty, or to anyone (a public block listing)."""
    if side not in Side.values:
        raise InvalidInput(gettext("side is buy or sell."), details={"side": side})
    if counterparty is not None and counterparty.pk == actor.member_participant_id:
        raise OwnListing(gettext("You can't offer a block to yourself."))
    moment, rules = _start(actor, account, asset, client_order_id, at)
    mode_rules = _check_mode(rules, TradingMode.BLOCK, asset, price_fen, quantity, moment)
    offer = _new_order(
        actor,
        account,
        asset,
        side,
        TradingMode.BLOCK,
        price_fen,
        quantity,
        client_order_id,
        moment,
        mode_rules,
        rules.rulebook,
        counterparty=counterparty,
        partial_allowed=False,
    )
    audit_record(
        actor=actor,
        action="block.offer",
        obj=offer,
        payload={
            "order": offer.pk,
            "client_order_id": client_order_id,
            "account": account.number,
            "asset": asset.code,
            "market": rules.rulebook.market.code,
            "side": side,
            "price": fen_to_str(price_fen),
            "quantity": quantity,
            "counterparty": counterparty.pk if counterparty else None,
            "hold": offer.hold_id,
        },
        at=moment,
    )
    return offer


def _offer_for(actor: Actor, offer: Order) -> Order:
    current = Order.objects.select_related("hold", "asset").filter(pk=offer.pk, trading_mode=TradingMode.BLOCK).first()
    mine = actor.member_participant_id
    if current is None or (current.counterparty_id is not None and current.counterparty_id != mine):
        raise NotYourOffer(details={"offer": offer.pk})
    if current.participant_id == mine:
        raise OwnListing(details={"offer": offer.pk})
    if current.status != OrderStatus.OPEN:
        raise ListingNotAvailable(
            gettext("The offer is no longer open."), details={"offer": offer.pk, "status": current.status}
        )
    return current


@service
def block_accept(
    *, actor: Actor, account: Account, offer: Order, client_order_id: str, at: datetime | None = None
) -> Placed:
    """Accept a block offer addressed to you (or a public one) whole, within the block session."""
    moment, rules = _start(actor, account, offer.asset, client_order_id, at)
    current = _offer_for(actor, offer)
    mode_rules = _check_mode(rules, TradingMode.BLOCK, current.asset, current.price_fen, current.quantity, moment)
    side = Side.BUY if current.side == Side.SELL else Side.SELL
    taker = _new_order(
        actor,
        account,
        current.asset,
        side,
        TradingMode.BLOCK,
        current.price_fen,
        current.remaining,
        client_order_id,
        moment,
        mode_rules,
        rules.rulebook,
        counterparty_id=current.participant_id,
        partial_allowed=False,
    )
    done = fill(current, taker, current.remaining, price_fen=current.price_fen, mode_rules=mode_rules, moment=moment)
    trade = trade_of(taker, done, asset=current.asset, moment=moment)
    fills_save([trade], [taker, current])
    audit_record(
        actor=actor,
        action="block.accept",
        obj=taker,
        payload={
            "order": taker.pk,
            "offer": current.pk,
            "account": account.number,
            "asset": current.asset.code,
            "price": fen_to_str(trade.price_fen),
            "quantity": trade.quantity,
            "trade": trade.pk,
        },
        at=moment,
    )
    return Placed(order=taker, trades=[trade])


@service
def block_decline(*, actor: Actor, offer: Order) -> Order:
    """Decline a block offer addressed to you: it ends and its reservation is released."""
    actor.require_can_act()
    lock_book(offer.asset_id)
    current = _offer_for(actor, offer)
    if current.counterparty_id is None:
        raise NotYourOffer(gettext("A public block listing is not declined; leave it."), details={"offer": offer.pk})
    moment = clock.now()
    released = end_orders([current], "declined", moment)
    audit_record(
        actor=actor,
        action="block.decline",
        obj=current,
        payload={"offer": current.pk, "released": released.get(current.hold_id, 0)},
        at=moment,
    )
    return current


@service
def block_counter(
    *,
    actor: Actor,
    account: Account,
    offer: Order,
    price_fen: int,
    client_order_id: str,
    quantity: int | None = None,
    at: datetime | None = None,
) -> Order:
    """Counter a block offer addressed to you: it is declined, and your offer of the other side goes back to
    its maker at your price (and quantity)."""
    current = _offer_for(actor, offer)
    if current.counterparty_id is None:
        raise NotYourOffer(
            gettext("Counter a public block listing with an offer of your own."), details={"offer": offer.pk}
        )
    maker = Participant.objects.get(pk=current.participant_id)
    block_decline(actor=actor, offer=current)
    counter = block_offer(
        actor=actor,
        account=account,
        asset=current.asset,
        side=Side.BUY if current.side == Side.SELL else Side.SELL,
        price_fen=price_fen,
        quantity=quantity or current.quantity,
        client_order_id=client_order_id,
        counterparty=maker,
        at=at,
    )
    audit_record(
        actor=actor,
        action="block.counter",
        obj=counter,
        payload={"offer": current.pk, "counter": counter.pk, "price": fen_to_str(price_fen)},
        at=counter.created_at,
    )
    return counter


__all__ = [
    "ListingNotAvailable",
    "block_accept",
    "block_counter",
    "block_decline",
    "block_offer",
    "enforcement_listing_post",
    "listing_pick",
    "listing_post",
]
