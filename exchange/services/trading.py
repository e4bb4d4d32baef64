"""The exchange: listing assets, cash in and out, orders with continuous matching, the daily close.

An order reserves what it may need before it can trade: a sell holds the serial units, a buy holds
cash for price x quantity plus the fee. Orders of one asset match under that asset's book lock (a
PostgreSQL advisory lock), so one book is serialised while different assets match in parallel. Matching
follows price-time priority, trades at the resting order's price, fills partially, and never matches a
participant's own orders with each other. Trades move nothing: settlement does (``settlement.py``).

Locks are taken in the order ``exchange.locks`` gives: the book, then balance rows, then hold rows.
"""

from __future__ import annotations

import json
import time as time_module
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.errors import WrongParticipantKind
from accounts.models import ParticipantKind
from core import clock
from core.db import pipeline
from core.errors import Conflict, InvalidInput, NotFound
from core.errors import translatable as _
from core.limits import MAX_PRICE_FEN, MAX_QUANTITY
from core.money import fen_to_str
from exchange.bulk import bulk_update
from exchange.engine.book import engine_book
from exchange.engine.writer import note_rules_change
from exchange.errors import (
    AccountNotFound,
    DuplicateObject,
    IdempotencyConflict,
    InvalidState,
    RuleViolation,
)
from exchange.locks import lock_balances, lock_book, lock_holds
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    AssetKind,
    BookWriter,
    DailyPrice,
    Hold,
    HoldKind,
    HoldStatus,
    MarketRules,
    Order,
    OrderMode,
    OrderStatus,
    ProceedsAdvance,
    Rulebook,
    RulebookMode,
    Side,
    Trade,
    TradingMode,
    Transaction,
    TransactionKind,
)
from exchange.selectors.calendar import is_trading_day
from exchange.selectors.market import day_trades
from exchange.selectors.prices import previous_close, vwap
from exchange.selectors.risk import position_limit, position_of
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.accounts import check_source, system_account
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.ledger import Leg, hold_place, holds_release, journal_open, ledger_post
from exchange.services.proceeds import buy_hold_place, check_withdrawable

TRADING_KINDS = frozenset(
    {
        ParticipantKind.COMPLIANCE_ENTITY,
        ParticipantKind.PROJECT_OWNER,
        ParticipantKind.INVESTOR,
        ParticipantKind.FINANCIAL_INSTITUTION,
    }
)
CASH_CODE = "CNY"
CONTINUOUS = "continuous"


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


class DuplicateBankReference(Conflict):
    code = "duplicate_bank_reference"
    default_message = _("A cash booking with this bank reference exists already.")


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


# --- helpers ---------------------------------------------------------------------------------------------
def fee_for(turnover_fen: int, fee_bp: int) -> int:
    """The fee on a turnover, rounded half up to the fen."""
    return (turnover_fen * fee_bp + 5000) // 10000


_cash: dict[str, Asset] = {}


def cash_asset() -> Asset:
    """The CNY asset (integer fen), created on first use; remembered once the transaction that found or
    made it commits (an asset from a rolled-back transaction never existed, and its id may be reused)."""
    asset = _cash.get(CASH_CODE)
    if asset is None:
        asset, _ = Asset.objects.get_or_create(
            code=CASH_CODE,
            defaults={"kind": AssetKind.CASH, "name": "Renminbi (fen)", "serialised": False, "transferable": False},
        )
        found = asset
        transaction.on_commit(lambda: _cash.setdefault(CASH_CODE, found))
    return asset


def clear_cash_cache() -> None:
    _cash.clear()


def parse_sessions(text: str) -> list[tuple[time, time]]:
    sessions = []
    for part in text.split(","):
        start, _, end = part.strip().partition("-")
        begin = time.fromisoformat(start.strip())
        finish = time.max if end.strip() == "24:00" else time.fromisoformat(end.strip())
        sessions.append((begin, finish))
    return sessions


@dataclass(frozen=True)
class Sessions:
    """When a mode trades: its sessions, on the days its rulebook's calendar opens."""

    sessions: str
    trading_days: str = "calendar"
    calendar_code: str = "CN"


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
        block = self.rulebook.mode(TradingMode.BLOCK)
        if block is not None:
            return block.min_quantity
        continuous = self.rulebook.mode(TradingMode.CONTINUOUS)
        cap = continuous.max_quantity if continuous is not None else None
        return cap + 1 if cap is not None else MAX_QUANTITY + 1

    def mode_rules(self, order_mode: str) -> RulebookMode | None:
        """The rulebook mode an order of the continuous book trades under (None: not enabled)."""
        if self.rulebook.mode(TradingMode.CONTINUOUS) is None:
            return None
        return self.rulebook.mode(TradingMode.BLOCK if order_mode == OrderMode.BLOCK else TradingMode.CONTINUOUS)

    def sessions(self, order_mode: str) -> Sessions:
        mode = self.mode_rules(order_mode)
        return Sessions(mode.sessions if mode else "", self.rulebook.trading_days, self.rulebook.calendar_code)

    def mode_sessions(self, mode_name: str) -> Sessions:
        """The sessions of a rulebook mode (listing, block, auction, continuous); none if not enabled."""
        mode = self.rulebook.mode(mode_name)
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


def session_open(rules: Any, moment: datetime) -> bool:
    return session_end(rules, moment) is not None


def session_end(rules: Any, moment: datetime) -> datetime | None:
    """When the session open at ``moment`` ends (the latest end, should sessions overlap); None when the
    market is closed then. A session belongs to its trading day: 00:00-24:00 ends at the next midnight.
    ``rules`` has ``sessions``, ``trading_days`` and (optionally) ``calendar_code``: a ``Sessions``."""
    local = moment.astimezone(clock.MARKET_TZ)
    if not rules.sessions:
        return None
    calendar = getattr(rules, "calendar_code", "CN") or "CN"
    if rules.trading_days == "weekdays" and local.weekday() >= 5:
        return None
    if rules.trading_days == "calendar" and not is_trading_day(local.date(), calendar):
        return None
    now = local.time()
    ends = [end for start, end in parse_sessions(rules.sessions) if start <= now < end]
    if not ends:
        return None
    end = max(ends)
    if end == time.max:  # 24:00
        return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=clock.MARKET_TZ)
    return datetime.combine(local.date(), end, tzinfo=clock.MARKET_TZ)


def day_closed(rulebook: Rulebook, day: date, moment: datetime) -> bool:
    """Whether the market's trading day ``day`` is over at ``moment``: a past day, or today after its last
    session of any mode (an instrument trading 00:00-24:00 closes at midnight)."""
    local = moment.astimezone(clock.MARKET_TZ)
    if day < local.date():
        return True
    if day > local.date():
        return False
    ends = [end for mode in rulebook.modes.all() for _, end in parse_sessions(mode.sessions)]
    return bool(ends) and local.time() >= max(ends)


def session_ended(rules: Any, placed: datetime, moment: datetime) -> bool:
    """Whether the session an order placed at ``placed`` trades in has ended by ``moment``. An order placed
    when no session was open (the rules changed since) has no session left."""
    end = session_end(rules, placed)
    return end is None or end <= moment


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


def _require_exchange(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.EXCHANGE)


# --- listing and cash ------------------------------------------------------------------------------------
# What is per instrument; every other rule is its market's rulebook's (exchange.models.markets).
RULE_FIELDS = ("tradable",)


@service
def asset_list(*, actor: Actor, asset: Asset, reference_price_fen: int, **rules: Any) -> MarketRules:
    """List an allowance or CCER asset for trading (exchange operator) with its reference price; it trades
    under its market's rulebook (``Asset.market``)."""
    _require_exchange(actor)
    if asset.kind not in (AssetKind.ALLOWANCE, AssetKind.CCER):
        raise InvalidInput(gettext("Only allowances and CCER are traded."), details={"asset": asset.code})
    unknown = set(rules) - set(RULE_FIELDS)
    if unknown:
        raise InvalidInput(gettext("Unknown rules: %(rules)s.") % {"rules": sorted(unknown)})
    if MarketRules.objects.filter(asset=asset).exists():
        raise DuplicateObject(
            gettext("%(asset)s is listed already.") % {"asset": asset.code}, details={"asset": asset.code}
        )
    if not 0 < reference_price_fen <= MAX_PRICE_FEN:
        raise InvalidInput(
            gettext("A reference price is positive and at most %(max)s.") % {"max": fen_to_str(MAX_PRICE_FEN)},
            details={"reference_price": fen_to_str(reference_price_fen)},
        )
    if asset.market_id is None:
        raise InvalidInput(gettext("The asset belongs to no market."), details={"asset": asset.code})
    listed = MarketRules.objects.create(asset=asset, reference_price_fen=reference_price_fen, **rules)
    audit_record(
        actor=actor,
        action="market.list",
        obj=asset,
        payload={
            "asset": asset.code,
            "market": asset.market.code if asset.market else "",
            "reference_price": fen_to_str(reference_price_fen),
            **_rules_payload(listed),
        },
    )
    return listed


def _rules_payload(rules: MarketRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in RULE_FIELDS}


@service
def market_rules_update(*, actor: Actor, rules: MarketRules, **changes: Any) -> MarketRules:
    """Change what is per instrument (listed or not, reference price; exchange operator), audited. The
    market-wide rules change by a new rulebook version (``exchange.services.markets.rulebook_publish``)."""
    _require_exchange(actor)
    unknown = set(changes) - set(RULE_FIELDS) - {"reference_price_fen"}
    if unknown:
        raise InvalidInput(
            gettext("Unknown rules: %(rules)s; market-wide rules are the rulebook's.") % {"rules": sorted(unknown)},
            details={"unknown": sorted(unknown)},
        )
    before = _rules_payload(rules) | {"reference_price_fen": rules.reference_price_fen}
    diff = {k: [before[k], v] for k, v in changes.items() if before.get(k) != v}
    if not diff:
        mark_unchanged()
        return rules
    MarketRules.objects.filter(pk=rules.pk).update(**{k: v[1] for k, v in diff.items()})
    for key, (_before, value) in diff.items():
        setattr(rules, key, value)
    note_rules_change(asset_ids=[rules.asset_id])
    audit_record(actor=actor, action="market.rules_update", obj=rules.asset, payload={"changes": diff})
    return rules


def _check_cash_account(account: Account) -> None:
    if account.kind != AccountKind.HOLDING:
        raise AccountNotFound(details={"account": account.number})


def _cash_entry(
    kind: str, actor: Actor, prefix: str, reference: str, request: dict[str, Any], memo: str
) -> Transaction:
    """The journal entry of a cash booking, once per bank reference.

    The bank reference is a uniqueness rule, not a replay: the journal keeps ``<prefix>:<reference>`` in
    its ``idempotency_key`` column under the exchange's scope, and that column's unique index refuses a
    second booking (``duplicate_bank_reference``). Retrying a request safely is the Idempotency-Key's job.
    """
    try:
        txn, replayed = journal_open(
            kind=kind,
            actor=actor,
            idempotency_key=f"{prefix}:{reference}",
            request=request,
            memo=memo,
            scope="exchange:cash",
        )
    except IdempotencyConflict:
        replayed = True
    if replayed:
        raise DuplicateBankReference(details={"reference": reference})
    return txn


@service
def cash_deposit(*, actor: Actor, account: Account, amount_fen: int, reference: str) -> Transaction:
    """Book cash received for a participant (exchange operator), once per bank reference."""
    _require_exchange(actor)
    _check_cash_account(account)
    if amount_fen <= 0:
        raise InvalidInput(gettext("A deposit is a positive amount."), details={"amount": fen_to_str(amount_fen)})
    request = {"account": account.number, "amount": fen_to_str(amount_fen), "reference": reference}
    txn = _cash_entry(TransactionKind.DEPOSIT, actor, "deposit", reference, request, f"Deposit {reference}")
    posted = ledger_post(txn, [Leg(cash_asset(), system_account(AccountKind.ISSUANCE), account, amount_fen)])
    payload = {**request, "entry_digest": posted.digest}
    audit_record(actor=actor, action="cash.deposit", obj=txn, payload=payload, at=txn.created_at)
    return txn


@service
def cash_withdraw(*, actor: Actor, account: Account, amount_fen: int, reference: str) -> Transaction:
    """Pay cash out to a participant's bank (exchange operator); held cash (open buy orders) can't leave, nor
    can cash of sales paid before they settled (``proceeds_not_withdrawable``, ``exchange.services.proceeds``)."""
    _require_exchange(actor)
    _check_cash_account(account)
    if amount_fen <= 0:
        raise InvalidInput(gettext("A withdrawal is a positive amount."), details={"amount": fen_to_str(amount_fen)})
    request = {"account": account.number, "amount": fen_to_str(amount_fen), "reference": reference}
    txn = _cash_entry(TransactionKind.WITHDRAWAL, actor, "withdrawal", reference, request, f"Withdrawal {reference}")
    posted = ledger_post(txn, [Leg(cash_asset(), account, system_account(AccountKind.ISSUANCE), amount_fen)])
    check_withdrawable(account, cash_asset(), amount_fen)  # sales' cash buys on T, leaves once settled (T+1)
    payload = {**request, "entry_digest": posted.digest}
    audit_record(actor=actor, action="cash.withdraw", obj=txn, payload=payload, at=txn.created_at)
    return txn


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
    _refuse_duplicate(actor, client_order_id)
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
        _refuse_duplicate(actor, client_order_id)
        raise


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
    _check_order_rules(rules, side, mode, price_fen, quantity, moment, reference_fen)
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


def _refuse_duplicate(actor: Actor, client_order_id: str) -> None:
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


def _check_order_rules(
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
        Trade.objects.bulk_create(trades)
        bulk_update(
            Order._meta.db_table,
            ORDER_FILL_COLUMNS,
            [(o.pk, o.filled, o.filled_turnover_fen, o.fee_fen, o.status, o.end_reason, o.ended_at) for o in resting],
        )
    audit_record(actor=actor, action="order.place", obj=order, payload=place_payload(order, hold, trades), at=moment)
    return Placed(order=order, trades=trades)


ORDER_FILL_COLUMNS = [
    ("filled", "bigint"),
    ("filled_turnover_fen", "bigint"),
    ("fee_fen", "bigint"),
    ("status", "text"),
    ("end_reason", "text"),
    ("ended_at", "timestamptz"),
]


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


def trades_of(order: Order, fills: list[tuple[Order, int, int, int, int]]) -> list[Trade]:
    """The trades (not saved) of an incoming order's fills, as ``_match`` returned them."""
    side = order.side
    return [
        Trade(
            asset=order.asset,
            mode=order.mode,
            buy_order_id=order.pk if side == Side.BUY else other.pk,
            sell_order_id=order.pk if side == Side.SELL else other.pk,
            aggressor=side,
            price_fen=price,
            quantity=q,
            turnover_fen=price * q,
            buyer_fee_fen=buyer_fee,
            seller_fee_fen=seller_fee,
            trading_day=order.trading_day,
            created_at=order.created_at,
        )
        for other, price, q, buyer_fee, seller_fee in fills
    ]


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
    _check_order_rules(rules, Side.SELL, mode, price_fen, quantity, moment, reference)
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


def _match(order: Order, rules: InstrumentRules) -> tuple[list[tuple[Order, int, int, int, int]], list[Order]]:
    """Fill the incoming order against the book in memory; return fills and the resting orders touched.

    Price-time priority, at the resting order's price; a participant's own orders are passed over.
    """
    fills: list[tuple[Order, int, int, int, int]] = []
    touched: list[Order] = []
    for resting in _resting(order):
        if order.remaining == 0:
            break
        q = min(order.remaining, resting.remaining)
        price = resting.price_fen
        buy, sell = (order, resting) if order.side == Side.BUY else (resting, order)
        buyer_fee = _charge(buy, price * q, q, rules.fee_bp(order.mode, Side.BUY))
        seller_fee = _charge(sell, price * q, q, rules.fee_bp(order.mode, Side.SELL))
        fills.append((resting, price, q, buyer_fee, seller_fee))
        if resting.remaining == 0:
            resting.status, resting.end_reason, resting.ended_at = OrderStatus.FILLED, "filled", order.created_at
        touched.append(resting)
    if order.remaining == 0:
        order.status, order.end_reason, order.ended_at = OrderStatus.FILLED, "filled", order.created_at
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


def _charge(order: Order, turnover: int, quantity: int, fee_bp: int) -> int:
    """Record a fill on an order; return its fee, charged so that all fills' fees sum to one rounding."""
    order.filled += quantity
    order.filled_turnover_fen += turnover
    total_fee = fee_for(order.filled_turnover_fen, fee_bp)
    fee, order.fee_fen = total_fee - order.fee_fen, total_fee
    return fee


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


def _end_orders(orders: list[Order], reason: str, moment: datetime) -> dict[int, int]:
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
    released = _end_orders([current], "cancelled", moment)
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


@service
def orders_cancel_at_close(*, actor: Actor | None = None) -> int:
    """Cancel the open orders whose session has ended, per asset and its own sessions; return how many.

    Run every minute. An order placed in the 09:30-11:30 session is cancelled once 11:30 has passed; one of
    an asset trading 00:00-24:00, when its trading day changes. With nothing to cancel it is one query: the
    oldest open order of each asset (its session ends first). Safe to run twice.
    """
    actor = actor or Actor.system("session-close")
    moment = clock.now()
    # Sessions per (asset, trading day, order mode), read once per run.
    cache: dict[tuple[int, date, str], Sessions] = {}
    due = []
    for asset_id, placed, trading_days, calendar_code, modes in _oldest_open_orders():
        for order_mode, mode_name in (
            (OrderMode.LISTING, TradingMode.CONTINUOUS),
            (OrderMode.BLOCK, TradingMode.BLOCK),
        ):
            enabled = TradingMode.CONTINUOUS in modes
            sessions = Sessions(modes.get(mode_name, "") if enabled else "", trading_days or "", calendar_code or "CN")
            cache[(asset_id, clock.trading_day(placed), order_mode)] = sessions
        if any(
            session_ended(cache[(asset_id, clock.trading_day(placed), m)], placed, moment)
            for m in (OrderMode.LISTING, OrderMode.BLOCK)
        ):
            due.append(asset_id)
    if not due:
        mark_unchanged()
        return 0
    for asset_id in due:
        lock_book(asset_id)
    orders = [
        order
        for order in Order.objects.filter(status=OrderStatus.OPEN, asset_id__in=due)
        .exclude(trading_mode=TradingMode.AUCTION)
        .select_related("hold")
        .order_by("id")
        if session_ended(
            _order_sessions(order.asset_id, order.created_at, session_kind(order), cache), order.created_at, moment
        )
    ]
    if not orders:
        mark_unchanged()
        return 0
    _end_orders(orders, "session_close", moment)
    per_asset: dict[int, int] = {}
    for order in orders:
        per_asset[order.asset_id] = per_asset.get(order.asset_id, 0) + 1
    audit_record(
        actor=actor,
        action="order.cancel_at_close",
        obj=("session", clock.trading_day(moment).isoformat()),
        payload={
            "orders": len(orders),
            "per_asset": {str(k): v for k, v in per_asset.items()},
            "first": orders[0].pk,
            "last": orders[-1].pk,
        },
        at=moment,
    )
    return len(orders)


_sessions_cache: dict[tuple[int, date, str], tuple[float, Sessions]] = {}
SESSIONS_CACHE_SECONDS = 60.0


# What an open order's session is, by its trading mode and (in the continuous book) its size class.
SESSION_KINDS = ("continuous", "continuous-block", "listing", "block")
_SESSION_MODE = {
    "continuous": TradingMode.CONTINUOUS,
    "continuous-block": TradingMode.BLOCK,
    "listing": TradingMode.LISTING,
    "block": TradingMode.BLOCK,
}


def session_kind(order: Order) -> str:
    if order.trading_mode == CONTINUOUS:
        return "continuous-block" if order.mode == OrderMode.BLOCK else "continuous"
    return order.trading_mode


def _oldest_open_orders() -> list[tuple[int, datetime, str | None, str | None, dict[str, str]]]:
    """Per instrument with open orders: its oldest open order's time, and the rulebook of that order's trading
    day (trading days, calendar, each mode's sessions), in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT o.asset_id, o.oldest, r.trading_days, r.calendar_code,
                   COALESCE(jsonb_object_agg(m.mode, m.sessions) FILTER (WHERE m.mode IS NOT NULL), '{}'::jsonb)
              FROM (SELECT asset_id, min(created_at) AS oldest FROM exchange_order
                     WHERE status = 'open' AND trading_mode <> 'auction' GROUP BY asset_id) o
              JOIN exchange_asset a ON a.id = o.asset_id
              LEFT JOIN LATERAL (
                    SELECT r.id, r.trading_days, r.calendar_code FROM exchange_rulebook r
                     WHERE r.market_id = a.market_id
                       AND r.effective_from <= (o.oldest AT TIME ZONE 'Asia/Shanghai')::date
                     ORDER BY r.effective_from DESC, r.version DESC LIMIT 1) r ON true
              LEFT JOIN exchange_rulebookmode m ON m.rulebook_id = r.id
             GROUP BY o.asset_id, o.oldest, r.trading_days, r.calendar_code
             ORDER BY o.asset_id
            """
        )
        rows = cursor.fetchall()
    return [(a, t, d, c, m if isinstance(m, dict) else json.loads(m)) for a, t, d, c, m in rows]


def clear_sessions_cache() -> None:
    """Forget the sessions read for the close job (a rulebook version was published, or a test starts)."""
    _sessions_cache.clear()


def _order_sessions(
    asset_id: int, placed: datetime, kind: str, cache: dict[tuple[int, date, str], Sessions]
) -> Sessions:
    """The sessions an order of session ``kind`` placed at ``placed`` trades in (its trading day's rulebook); none when
    the rulebook no longer enables its mode (the order has no session left). Versions in effect never change,
    so what was read is kept for a minute (a version published for today is seen within it)."""
    day = clock.trading_day(placed)
    key = (asset_id, day, kind)
    if key in cache:
        return cache[key]
    kept = _sessions_cache.get(key)
    if kept is not None and time_module.monotonic() - kept[0] < SESSIONS_CACHE_SECONDS:
        cache[key] = kept[1]
        return kept[1]
    asset = Asset.objects.get(pk=asset_id)
    try:
        rulebook = rulebook_for(asset, day)
    except NotFound:
        found = Sessions("")
    else:
        rules = InstrumentRules(listing=MarketRules(asset_id=asset_id, reference_price_fen=1), rulebook=rulebook)
        if kind.startswith("continuous"):
            found = rules.sessions(OrderMode.BLOCK if kind == "continuous-block" else OrderMode.LISTING)
        else:
            found = rules.mode_sessions(kind)
    cache[key] = found
    _sessions_cache[key] = (time_module.monotonic(), found)
    return found


# --- the daily close -------------------------------------------------------------------------------------
@service
def day_close(*, asset: Asset, day: date | None = None, actor: Actor | None = None) -> DailyPrice:
    """Record the day's OHLCV and close: the VWAP of its listing trades, else the previous close.

    Idempotent: a day is closed once.
    """
    actor = actor or Actor.system("day-close")
    day = day or clock.trading_day()
    existing = DailyPrice.objects.filter(asset=asset, day=day).first()
    if existing is not None:
        mark_unchanged()
        return existing
    stats = day_trades(asset, day)
    listing_close = vwap(asset, day, day, listing_only=True)
    if listing_close is not None:
        close, from_trades = listing_close, True
    else:
        reference = previous_close(asset, day)
        if reference is None:
            raise NotTradable(gettext("The asset has no close and no reference price."), details={"asset": asset.code})
        close, from_trades = reference, False
    row = DailyPrice.objects.create(
        asset=asset,
        day=day,
        open_fen=stats.open_fen,
        high_fen=stats.high_fen,
        low_fen=stats.low_fen,
        close_fen=close,
        volume=stats.volume,
        turnover_fen=stats.turnover_fen,
        trades=stats.trades,
        close_from_trades=from_trades,
        computed_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="market.close",
        obj=row,
        payload={
            "asset": asset.code,
            "day": day,
            "close": fen_to_str(close),
            "from_trades": from_trades,
            "volume": row.volume,
            "trades": stats.trades,
        },
    )
    return row


def listed_assets() -> list[Asset]:
    return list(Asset.objects.filter(rules__isnull=False).order_by("pk"))


__all__ = [
    "OrderNotFound",
    "Placed",
    "cash_asset",
    "day_close",
    "enforcement_order_place",
    "fee_for",
    "order_cancel",
    "order_place",
]

# The order machinery the other trading modes share (exchange.services.agreements, exchange.services.auctions).
charge_fill = _charge
end_orders = _end_orders
refuse_duplicate = _refuse_duplicate
