"""One-way auction (单向竞价): a seller offers a quantity with a reserve price and a bidding window; bidders
place sealed bids with their cash held; at the close the quantity is allocated by price then time, each
winning bid paying its own price or the clearing price (the lowest winning price) as the market's rulebook
says (``Rulebook.auction_pricing``). Losing bids' cash is released; what is unsold returns to the seller.

The offer and the bids are ``Order`` rows (``trading_mode`` ``auction``) holding as every order does; the
allocation's trades settle in the one settlement batch after the close. Bids stay sealed: the API shows a
bidder its own bids only, and the auction's bids to nobody before the close.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import NotFound, translatable
from core.money import fen_to_str
from exchange.errors import InvalidState, RuleViolation
from exchange.locks import lock_book
from exchange.models import (
    Account,
    Asset,
    Auction,
    AuctionPricing,
    AuctionStatus,
    MarketRules,
    Order,
    OrderStatus,
    Rulebook,
    RulebookMode,
    Side,
    TradingMode,
)
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.agreements import _check_mode, _mode_rules, _new_order, _start
from exchange.services.audit import audit_record, service
from exchange.services.fills import fill, fills_save, trade_of
from exchange.services.instrument_rules import InstrumentRules
from exchange.services.orders import end_orders


class AuctionNotFound(NotFound):
    code = "auction_not_found"
    default_message = translatable("No such auction.")


class AuctionNotOpen(InvalidState):
    code = "auction_not_open"
    default_message = translatable("The auction is not taking bids now (before its window, after it, or closed).")


class AuctionStillOpen(InvalidState):
    code = "auction_still_open"
    default_message = translatable("The auction's bidding window has not ended yet.")


class AuctionWindowInvalid(RuleViolation):
    code = "auction_window_invalid"
    default_message = translatable("The bidding window opens before it closes, and closes in the future.")


class BidBelowReserve(RuleViolation):
    code = "bid_below_reserve"
    default_message = translatable("The bid is below the auction's reserve price.")


@service
def auction_announce(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    quantity: int,
    reserve_price_fen: int,
    opens_at: datetime,
    closes_at: datetime,
    client_order_id: str,
    at: datetime | None = None,
) -> Auction:
    """Announce a one-way auction of ``quantity`` from ``account`` (the units are held from now)."""
    moment, rules = _start(actor, account, asset, client_order_id, at)
    if not (moment <= closes_at and opens_at < closes_at):
        raise AuctionWindowInvalid(details={"opens_at": opens_at.isoformat(), "closes_at": closes_at.isoformat()})
    mode_rules = _check_mode(rules, TradingMode.AUCTION, asset, reserve_price_fen, quantity, max(moment, opens_at))
    auction = Auction.objects.create(
        asset=asset,
        initiator_id=actor.member_participant_id,
        quantity=quantity,
        reserve_price_fen=reserve_price_fen,
        opens_at=opens_at,
        closes_at=closes_at,
        pricing=rules.rulebook.auction_pricing,
        created_at=moment,
    )
    offer = _new_order(
        actor,
        account,
        asset,
        Side.SELL,
        TradingMode.AUCTION,
        reserve_price_fen,
        quantity,
        client_order_id,
        moment,
        mode_rules,
        rules.rulebook,
        auction=auction,
        partial_allowed=True,
    )
    audit_record(
        actor=actor,
        action="auction.announce",
        obj=auction,
        payload={
            "auction": auction.pk,
            "order": offer.pk,
            "asset": asset.code,
            "quantity": quantity,
            "reserve_price": fen_to_str(reserve_price_fen),
            "opens_at": opens_at.isoformat(),
            "closes_at": closes_at.isoformat(),
            "pricing": auction.pricing,
            "hold": offer.hold_id,
        },
        at=moment,
    )
    return auction


@service
def auction_bid(
    *,
    actor: Actor,
    account: Account,
    auction: Auction,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    at: datetime | None = None,
) -> Order:
    """Place a sealed bid in an open auction; its cash (price x quantity plus the fee) is held until the close."""
    moment, rules = _start(actor, account, auction.asset, client_order_id, at)
    current = Auction.objects.get(pk=auction.pk)
    if current.status != AuctionStatus.OPEN or not current.opens_at <= moment < current.closes_at:
        raise AuctionNotOpen(details={"auction": auction.pk, "status": current.status})
    if current.initiator_id == actor.member_participant_id:
        raise RuleViolation(gettext("You can't bid in your own auction."), details={"auction": auction.pk})
    if price_fen < current.reserve_price_fen:
        raise BidBelowReserve(
            details={"price": fen_to_str(price_fen), "reserve_price": fen_to_str(current.reserve_price_fen)}
        )
    mode_rules = _check_mode(rules, TradingMode.AUCTION, current.asset, price_fen, quantity, moment)
    bid = _new_order(
        actor,
        account,
        current.asset,
        Side.BUY,
        TradingMode.AUCTION,
        price_fen,
        quantity,
        client_order_id,
        moment,
        mode_rules,
        rules.rulebook,
        auction=current,
    )
    audit_record(
        actor=actor,
        action="auction.bid",
        obj=bid,
        payload={
            "auction": current.pk,
            "order": bid.pk,
            "account": account.number,
            "price": fen_to_str(price_fen),
            "quantity": quantity,
            "hold": bid.hold_id,
            "reserved": bid.hold.quantity,
        },
        at=moment,
    )
    return bid


@service
def auction_close(*, auction: Auction, actor: Actor | None = None) -> Auction:
    """Allocate a closed window: bids by price (highest first) then time, until the quantity is gone; at
    each bid's price or at the clearing price as the rulebook said at announcement. Losing bids and what is
    left of a partly filled bid are released; unsold units return to the seller. Safe to run twice."""
    actor = actor or Actor.system("auction-close")
    if not actor.is_system:
        actor.require_can_act()
        if not actor.owns(auction.initiator_id):
            actor.require_kind(ParticipantKind.EXCHANGE)
    lock_book(auction.asset_id)
    current = Auction.objects.select_related("asset").get(pk=auction.pk)
    moment = clock.now()
    if current.status != AuctionStatus.OPEN:
        raise InvalidState(gettext("The auction is closed already."), details={"auction": auction.pk})
    if moment < current.closes_at:
        raise AuctionStillOpen(details={"auction": auction.pk, "closes_at": current.closes_at.isoformat()})
    orders = list(Order.objects.select_related("hold").filter(auction=current, status=OrderStatus.OPEN).order_by("id"))
    offer = next(o for o in orders if o.side == Side.SELL)
    bids = sorted((o for o in orders if o.side == Side.BUY), key=lambda o: (-o.price_fen, o.pk))
    winners: list[tuple[Order, int]] = []
    left = offer.remaining
    for bid in bids:
        if left == 0:
            break
        q = min(left, bid.remaining)
        winners.append((bid, q))
        left -= q
    clearing = winners[-1][0].price_fen if winners else None
    mode_rules = _mode_rules_for(current, rulebook_for(current.asset, clock.trading_day(current.created_at)))
    trades = []
    for bid, q in winners:
        price = clearing if current.pricing == AuctionPricing.CLEARING and clearing is not None else bid.price_fen
        done = fill(offer, bid, q, price_fen=price, mode_rules=mode_rules, moment=moment)
        trades.append(trade_of(bid, done, asset=current.asset, moment=moment))
    fills_save(trades, [offer, *[b for b, _ in winners]])
    still_open = [o for o in orders if o.status == OrderStatus.OPEN]
    released = end_orders(still_open, "auction_close", moment) if still_open else {}
    current.status = AuctionStatus.CLOSED
    current.sold = sum(q for _, q in winners)
    current.clearing_price_fen = clearing
    current.closed_at = moment
    current.save(update_fields=["status", "sold", "clearing_price_fen", "closed_at"])
    audit_record(
        actor=actor,
        action="auction.close",
        obj=current,
        payload={
            "auction": current.pk,
            "sold": current.sold,
            "unsold": current.quantity - current.sold,
            "clearing_price": fen_to_str(clearing) if clearing else None,
            "pricing": current.pricing,
            "trades": [[t.pk, t.buy_order_id, fen_to_str(t.price_fen), t.quantity] for t in trades],
            "released": {str(k): v for k, v in released.items()},
        },
        at=moment,
    )
    return current


def _mode_rules_for(auction: Auction, rulebook: Rulebook) -> RulebookMode:
    """The auction mode's rules (fees) of the rulebook in effect when the auction was announced."""
    return _mode_rules(
        InstrumentRules(listing=MarketRules(asset_id=auction.asset_id, reference_price_fen=1), rulebook=rulebook),
        TradingMode.AUCTION,
    )


def auction_of(pk: int) -> Auction:
    auction = Auction.objects.select_related("asset").filter(pk=pk).first()
    if auction is None:
        raise AuctionNotFound(details={"auction": pk})
    return auction


__all__ = ["auction_announce", "auction_bid", "auction_close", "auction_of"]
