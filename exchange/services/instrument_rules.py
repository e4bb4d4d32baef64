"""What an instrument trades under and what an order must meet: its market's rulebook in effect that day (who
may trade, modes, sessions, band, tick, lot, size classes, fees, position limit) and what is per instrument
(``MarketRules``: listed or not, the reference price).

One set of checks for every trading mode: ``order_place`` and the matching engine's batches
(``order_batch.py``) decide a continuous order with ``check_order``/``decide_order``; the agreement modes and
the auction (``agreements.py``, ``auctions.py``) check the trader, eligibility and position limit here too.
The checks read nothing but what they are given, except ``instrument_rules`` and ``check_position_limit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.errors import WrongParticipantKind
from accounts.models import ParticipantKind
from core import clock
from core.errors import InvalidInput
from core.errors import translatable as _
from core.limits import MAX_PRICE_FEN, MAX_QUANTITY
from core.money import fen_to_str
from exchange.errors import RuleViolation
from exchange.models import (
    Account,
    Asset,
    MarketRules,
    OrderMode,
    Rulebook,
    RulebookMode,
    Side,
    TradingMode,
)
from exchange.selectors.risk import position_limit, position_of
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.accounts import check_source
from exchange.services.sessions import Sessions, session_open

TRADING_KINDS = frozenset(
    {
        ParticipantKind.COMPLIANCE_ENTITY,
        ParticipantKind.PROJECT_OWNER,
        ParticipantKind.INVESTOR,
        ParticipantKind.FINANCIAL_INSTITUTION,
    }
)


# --- refusals --------------------------------------------------------------------------------------------
class NotTradable(RuleViolation):
    code = "asset_not_tradable"
    default_message = _("This asset is not listed for trading.")


class MarketClosed(RuleViolation):
    code = "market_closed"
    default_message = _("The market is closed; sessions are 09:30-11:30 and 13:00-15:00 China time.")


class NotEligible(RuleViolation):
    code = "not_eligible"
    default_message = _("The market's rulebook does not admit this participant to trade.")


class ModeNotEnabled(RuleViolation):
    code = "mode_not_enabled"
    default_message = _("The market's rulebook does not enable this trading mode.")


class PositionLimitExceeded(RuleViolation):
    code = "position_limit_exceeded"
    default_message = _("The buy would take your position over the market's position limit.")


class InvalidTick(RuleViolation):
    code = "invalid_tick"
    default_message = _("The price is not a multiple of the tick.")


class InvalidLot(RuleViolation):
    code = "invalid_lot"
    default_message = _("The quantity is not a multiple of the lot.")


class WrongOrderMode(RuleViolation):
    code = "wrong_order_mode"
    default_message = _("Listing orders are below the block threshold; block orders at or above it.")

    @classmethod
    def for_order(cls, *, mode: str, quantity: int, block_threshold: int) -> WrongOrderMode:
        """Say which way the order is wrong and both ways out: a listing order at or above the threshold is
        a block trade (negotiated with a named counterparty) or must be split; a block order below it is a
        listing order."""
        numbers = {"quantity": f"{quantity:,}", "threshold": f"{block_threshold:,}"}
        if mode == OrderMode.LISTING:
            message = gettext(
                "A listing order is for less than %(threshold)s t; %(quantity)s t is a block trade. Agree it with "
                'a named counterparty as a block order (mode "block"), or split it into listing orders below '
                "%(threshold)s t."
            )
        else:
            message = gettext(
                "A block order is for at least %(threshold)s t; place %(quantity)s t as a listing order "
                '(mode "listing").'
            )
        return cls(
            message % numbers,
            details={"mode": mode, "quantity": quantity, "block_threshold": block_threshold},
        )


class PriceOutOfBand(RuleViolation):
    code = "price_out_of_band"
    default_message = _("The price is outside the band around the previous close.")


def fee_for(turnover_fen: int, fee_bp: int) -> int:
    """The fee on a turnover, rounded half up to the fen."""
    return (turnover_fen * fee_bp + 5000) // 10000


@dataclass
class InstrumentRules:
    """What trading an instrument reads: its market's rulebook in effect that day, and what is per instrument
    (``MarketRules``: listed or not, and the reference price until the instrument has a close).

    In the continuous book an order below the block minimum is a ``listing``-size order under the rulebook's
    ``continuous`` mode; one at or above it a ``block`` order under the ``block`` mode (matched only with block
    orders, in the block mode's sessions and band).
    """

    listing: MarketRules
    rulebook: Rulebook
    # The rulebook's modes by name, read once (an order asks for them a dozen times; a version never changes).
    _modes: dict[str, RulebookMode] | None = field(default=None, init=False, repr=False, compare=False)

    def mode(self, name: str) -> RulebookMode | None:
        """The rules of one trading mode of the rulebook (``Rulebook.mode``), or None when it doesn't enable it."""
        if self._modes is None:
            modes: dict[str, RulebookMode] = {}
            for m in self.rulebook.modes.all():
                modes.setdefault(m.mode, m)
            self._modes = modes
        return self._modes.get(name)

    @property
    def asset_id(self) -> int:
        return self.listing.asset_id

    @property
    def tradable(self) -> bool:
        return self.listing.tradable

    @property
    def reference_price_fen(self) -> int:
        return self.listing.reference_price_fen

    @property
    def tick_fen(self) -> int:
        return self.rulebook.tick_fen

    @property
    def lot(self) -> int:
        return self.rulebook.lot

    @property
    def block_threshold(self) -> int:
        block = self.mode(TradingMode.BLOCK)
        if block is not None:
            return block.min_quantity
        continuous = self.mode(TradingMode.CONTINUOUS)
        cap = continuous.max_quantity if continuous is not None else None
        return cap + 1 if cap is not None else MAX_QUANTITY + 1

    def mode_rules(self, order_mode: str) -> RulebookMode | None:
        """The rulebook mode an order of the continuous book trades under (None: not enabled)."""
        if self.mode(TradingMode.CONTINUOUS) is None:
            return None
        return self.mode(TradingMode.BLOCK if order_mode == OrderMode.BLOCK else TradingMode.CONTINUOUS)

    def sale_mode(self, quantity: int) -> RulebookMode | None:
        """The rulebook mode a sell of ``quantity`` taking over pledged units trades under (a sale on
        enforcement): in the continuous book the continuous mode below the block minimum, else the block mode;
        on a market trading by agreement only, a listing while the listing mode's largest size allows, else a
        public block listing (None: that mode is not enabled)."""
        if self.mode(TradingMode.CONTINUOUS) is not None:
            return self.mode_rules(OrderMode.BLOCK if quantity >= self.block_threshold else OrderMode.LISTING)
        listing = self.mode(TradingMode.LISTING)
        if listing is not None and (listing.max_quantity is None or quantity <= listing.max_quantity):
            return listing
        return self.mode(TradingMode.BLOCK)

    def sessions(self, order_mode: str) -> Sessions:
        mode = self.mode_rules(order_mode)
        return Sessions(mode.sessions if mode else "", self.rulebook.trading_days, self.rulebook.calendar_code)

    def mode_sessions(self, mode_name: str) -> Sessions:
        """The sessions of a rulebook mode (listing, block, auction, continuous); none if not enabled."""
        mode = self.mode(mode_name)
        return Sessions(mode.sessions if mode else "", self.rulebook.trading_days, self.rulebook.calendar_code)

    def fee_bp(self, order_mode: str, side: str) -> int:
        mode = self.mode_rules(order_mode)
        if mode is None:
            return 0
        return mode.buyer_fee_bp if side == Side.BUY else mode.seller_fee_bp


def instrument_rules(asset: Asset, day: date | None = None) -> InstrumentRules:
    """The rules an instrument trades under on ``day`` (default today); ``asset_not_tradable`` if unlisted."""
    listing = MarketRules.objects.filter(asset_id=asset.pk).first()
    if listing is None or not listing.tradable:
        raise NotTradable(details={"asset": asset.code})
    return InstrumentRules(listing=listing, rulebook=rulebook_for(asset, day))


def check_eligible(actor: Actor, rulebook: Rulebook) -> None:
    """Who may trade in this market (the rulebook's allowed and barred kinds); ``not_eligible`` names the rule."""
    kind = actor.participant_kind
    market = rulebook.market.code
    if kind in rulebook.barred_kinds:
        raise NotEligible(
            gettext("%(market)s: participants of kind %(kind)s are barred from trading.")
            % {"market": market, "kind": kind},
            details={"rule": "barred_kinds", "market": market, "kind": kind, "version": rulebook.version},
        )
    if rulebook.allowed_kinds and kind not in rulebook.allowed_kinds:
        raise NotEligible(
            gettext("%(market)s: only %(kinds)s may trade.")
            % {"market": market, "kinds": ", ".join(rulebook.allowed_kinds)},
            details={"rule": "allowed_kinds", "market": market, "kind": kind, "version": rulebook.version},
        )


def band(rules: InstrumentRules, reference_fen: int, mode: str) -> tuple[int, int]:
    """The inclusive price band (fen) around the reference for an order mode of the continuous book."""
    mode_rules = rules.mode_rules(mode)
    return band_around(reference_fen, mode_rules.band_bp if mode_rules else None)


def band_around(reference_fen: int, band_bp: int | None) -> tuple[int, int]:
    """The inclusive price band (fen) of ``band_bp`` around a reference; no band: any positive price."""
    if band_bp is None:
        return 1, MAX_PRICE_FEN
    low = -((-reference_fen * (10000 - band_bp)) // 10000)  # ceiling
    high = (reference_fen * (10000 + band_bp)) // 10000
    return max(low, 1), high


# --- the rules of an order, one set for order_place and the matching engine's batches (order_batch.py) ---
def check_order(actor: Actor, account: Account, side: str, mode: str, client_order_id: str) -> None:
    """What an order's request must be whatever the book: a trader's own account, a side and a mode, an id."""
    check_trader(actor, account)
    if side not in Side.values or mode not in OrderMode.values:
        raise InvalidInput(gettext("side is buy or sell; mode is listing or block."))
    if not client_order_id or len(client_order_id) > 64:
        raise InvalidInput(gettext("A client order id is 1 to 64 characters."))


def decide_order(
    actor: Actor,
    rules: InstrumentRules,
    reference_fen: int,
    side: str,
    mode: str,
    price_fen: int,
    quantity: int,
    moment: datetime,
) -> int:
    """Check an order against its market's rules, from facts read by the caller (the rules in effect, the previous
    close ``reference_fen``): eligibility, mode, session, quantity, price, tick, lot, size class, band. Return what
    the order must hold (``hold_quantity``). Reads nothing."""
    check_eligible(actor, rules.rulebook)
    check_order_rules(rules, side, mode, price_fen, quantity, moment, reference_fen)
    return hold_quantity(rules, side, mode, price_fen, quantity)


def hold_quantity(rules: InstrumentRules, side: str, mode: str, price_fen: int, quantity: int) -> int:
    """What an order reserves before it can trade: a sell its units, a buy price x quantity plus the buyer's fee."""
    if side == Side.SELL:
        return quantity
    notional = price_fen * quantity
    return notional + fee_for(notional, rules.fee_bp(mode, Side.BUY))


def position_check(rulebook: Rulebook, limit: int | None, position: int, buying: int) -> None:
    """Refuse a buy that would take a position (holdings, bought and undelivered, open buys) over ``limit``."""
    if limit is not None and position + buying > limit:
        raise PositionLimitExceeded(
            details={
                "rule": rulebook.position_limit_rule,
                "market": rulebook.market.code,
                "limit": limit,
                "position": position,
                "quantity": buying,
            }
        )


def check_trader(actor: Actor, account: Account) -> None:
    """May this actor trade from this account at all (kind and role, and the account is theirs)."""
    actor.require_can_act()
    if actor.participant_kind not in TRADING_KINDS:
        raise WrongParticipantKind(gettext("Registry, exchange, verifier and auditor participants may not trade."))
    check_source(actor, account)


def check_position_limit(participant_id: int | None, asset: Asset, rulebook: Rulebook, buying: int) -> None:
    """Refuse a buy that would take the participant's position over the rulebook's limit: holdings of the
    instrument, plus units bought and not yet delivered, plus open buys, plus this one."""
    if participant_id is None:
        return
    limit = position_limit(participant_id, asset, rulebook)
    if limit is None:
        return
    position_check(rulebook, limit, position_of(participant_id, asset), buying)


def check_order_rules(
    rules: InstrumentRules, side: str, mode: str, price_fen: int, quantity: int, moment: datetime, reference: int
) -> None:
    if rules.mode_rules(mode) is None:
        raise ModeNotEnabled(
            details={"market": rules.rulebook.market.code, "mode": TradingMode.CONTINUOUS, "order_mode": mode}
        )
    sessions = rules.sessions(mode)
    if not session_open(sessions, moment):
        raise MarketClosed(
            gettext("The market is closed; %(mode)s orders trade %(sessions)s China time on trading days.")
            % {"mode": mode, "sessions": sessions.sessions},
            details={"sessions": sessions.sessions, "at": moment.astimezone(clock.MARKET_TZ).isoformat()},
        )
    if not 0 < quantity <= MAX_QUANTITY:
        raise InvalidInput(gettext("A quantity is a positive whole number of tonnes."), details={"quantity": quantity})
    if not 0 < price_fen <= MAX_PRICE_FEN:
        raise InvalidInput(gettext("A price is positive."), details={"price": fen_to_str(price_fen)})
    if price_fen % rules.tick_fen:
        raise InvalidTick(details={"price": fen_to_str(price_fen), "tick": fen_to_str(rules.tick_fen)})
    if quantity % rules.lot:
        raise InvalidLot(details={"quantity": quantity, "lot": rules.lot})
    if (mode == OrderMode.LISTING) != (quantity < rules.block_threshold):
        raise WrongOrderMode.for_order(mode=mode, quantity=quantity, block_threshold=rules.block_threshold)
    low, high = band(rules, reference, mode)
    if not low <= price_fen <= high:
        raise PriceOutOfBand(
            details={
                "price": fen_to_str(price_fen),
                "low": fen_to_str(low),
                "high": fen_to_str(high),
                "previous_close": fen_to_str(reference),
            }
        )
