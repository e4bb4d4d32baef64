"""Pledge loans (质押): request, registration, top-up, release, default, enforcement, daily valuation.

Key invariant: while a pledge is registered or defaulted, exactly its units are frozen by ``pledge``
holds on exact serial blocks (its ``PledgeCollateral`` rows), so they can't be transferred, sold,
surrendered, retired or pledged again. They leave the freeze only by release (back to the borrower's
available units) or by enforcement: into the lender's account (a ``pledge_enforcement`` journal entry
that consumes the holds), or sold on the exchange through an ordinary order that takes over the holds.

Lifecycle (every other move is refused with ``invalid_pledge_transition``, 409):

    requested --register--> registered --release--> released
    requested --reject--> rejected           registered --default--> defaulted --enforce--> enforced
    requested --withdraw--> withdrawn        registered --top_up--> registered

Money is integer fen; the annual rate and the LTV levels are basis points (385 bp = 3.85%).
Interest is simple, actual/365, from the start date to the day of repayment or enforcement, rounded
half up to the fen. LTV = principal / (pledged units x price), in basis points rounded up, so rounding
never hides a breach. The price is the latest daily close, else the listing's reference price.

Enforcement by sale: the amount due (principal + interest to the day the sale starts) is fixed when
the sell order is placed. The seller's fee is the borrower's: settlement takes it from the proceeds in
the borrower's account. In the same database transaction as each settlement of the order's trades,
``sale_fills_settled`` pays the lender from those net proceeds until it is paid in full; the rest stays
with the borrower, so proceeds are never free in the borrower's account while the lender is owed.
When the order has ended (filled, or cancelled at the session close) and its trades have settled, the
units left unsold go to the lender by transfer if it is still owed anything, else back to the
borrower; the loan is then enforced. A shortfall after that is the lender's claim outside the ledger.

Locks are taken in the order ``exchange.locks`` gives: enforcement rows, the loan row, then the book,
balance rows and hold rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core import clock
from core.errors import Forbidden, InvalidInput
from core.errors import translatable as _
from core.limits import MAX_QUANTITY, is_quantity, is_whole
from core.money import fen_to_str
from core.text import sentence
from exchange.errors import (
    AccountNotFound,
    InvalidState,
    RuleViolation,
)
from exchange.faults import crash_point
from exchange.locks import lock_book, lock_enforcements, lock_hold, lock_pledge_loans
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    Balance,
    CollateralKind,
    DefaultReason,
    EnforcementMethod,
    EnforcementStatus,
    Hold,
    HoldKind,
    HoldStatus,
    MarginCall,
    OrderStatus,
    PledgeCollateral,
    PledgeEnforcement,
    PledgeLoan,
    PledgeStatus,
    PledgeValuation,
    SerialBlock,
    Trade,
    TransactionKind,
)
from exchange.models.notices import NoticeKind
from exchange.models.pledges import BP
from exchange.selectors.pledges import PledgeNotFound, Price, collateral_price
from exchange.services.accounts import check_source
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import (
    Leg,
    SerialsNotAvailable,
    hold_place,
    holds_consolidate,
    holds_release,
    insufficient_available,
    journal_open,
    ledger_post,
)
from exchange.services.notices import notice_add
from exchange.services.trading import cash_asset, enforcement_order_place

logger = logging.getLogger("greenledger.pledges")

MAX_PRINCIPAL_FEN = 10**15
MAX_CURE_DAYS = 90
DEFAULT_CURE_DAYS = 3


# --- refusals --------------------------------------------------------------------------------------------
class InvalidPledgeTransition(InvalidState):
    code = "invalid_pledge_transition"
    default_message = _("The pledge is not in a state that allows this.")


class NotTheLender(Forbidden):
    code = "pledge_lender_only"
    default_message = _("Only the pledge's lender may do this.")


class NotTheBorrower(Forbidden):
    code = "pledge_borrower_only"
    default_message = _("Only the pledge's borrower may do this.")


class InvalidPledgeTerms(InvalidInput):
    code = "invalid_pledge_terms"
    default_message = _("The loan's terms are invalid.")


class InvalidLender(InvalidInput):
    code = "invalid_lender"
    default_message = _("The lender must be an active financial institution other than the borrower.")


class AssetNotPledgeable(InvalidInput):
    code = "asset_not_pledgeable"
    default_message = _("Only allowances and CCER can be pledged.")


class CollateralNotPriced(RuleViolation):
    code = "collateral_not_priced"
    default_message = _("The asset has no closing or reference price, so the pledge can't be valued.")


class LtvLimitExceeded(RuleViolation):
    code = "ltv_limit_exceeded"
    default_message = _("The principal is more than the loan-to-value limit allows against the collateral.")


class DefaultNotDue(RuleViolation):
    code = "pledge_default_not_due"
    default_message = _(
        "No ground for default: the loan has not matured, no margin call is past its cure date, "
        "and LTV is below the liquidation level."
    )


class EnforcementInProgress(InvalidState):
    code = "pledge_enforcement_in_progress"
    default_message = _("The pledge is being enforced by a sale on the exchange.")


# --- arithmetic --------------------------------------------------------------------------------------------
def simple_interest_fen(principal_fen: int, rate_bp: int, start: date, end: date) -> int:
    """Simple interest, actual/365, from ``start`` to ``end`` (no interest before start), rounded half up."""
    days = max((end - start).days, 0)
    numerator, denominator = principal_fen * rate_bp * days, BP * 365
    return (2 * numerator + denominator) // (2 * denominator)


def ltv_bp_of(principal_fen: int, value_fen: int) -> int:
    """Loan to value in basis points, rounded up (a breach is never rounded away)."""
    return -(-principal_fen * BP // value_fen)


def bp_to_percent(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d}"


# --- helpers -----------------------------------------------------------------------------------------------
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "register": (frozenset({PledgeStatus.REQUESTED}), PledgeStatus.REGISTERED),
    "reject": (frozenset({PledgeStatus.REQUESTED}), PledgeStatus.REJECTED),
    "withdraw": (frozenset({PledgeStatus.REQUESTED}), PledgeStatus.WITHDRAWN),
    "top_up": (frozenset({PledgeStatus.REGISTERED}), PledgeStatus.REGISTERED),
    "release": (frozenset({PledgeStatus.REGISTERED}), PledgeStatus.RELEASED),
    "default": (frozenset({PledgeStatus.REGISTERED}), PledgeStatus.DEFAULTED),
    "enforce": (frozenset({PledgeStatus.DEFAULTED}), PledgeStatus.ENFORCED),
}


DONE = {
    "register": "registered",
    "reject": "rejected",
    "withdraw": "withdrawn",
    "top_up": "topped up",
    "release": "released",
    "default": "declared in default",
    "enforce": "enforced",
}


def _transition(loan: PledgeLoan, action: str) -> str:
    """The status ``action`` leads to from the loan's status; ``invalid_pledge_transition`` if none."""
    allowed, target = TRANSITIONS[action]
    if loan.status not in allowed:
        raise InvalidPledgeTransition(
            f"A {loan.status} pledge can't be {DONE[action]}.",
            details={"pledge": loan.pk, "action": action, "from": loan.status, "to": target},
        )
    return target


def _locked(loan: PledgeLoan) -> PledgeLoan:
    (locked,) = lock_pledge_loans(
        PledgeLoan.objects.filter(pk=loan.pk).select_related(
            "account", "lender_account", "asset", "borrower", "lender", "margin_call"
        )
    )
    return locked


def _require_party(actor: Actor, loan: PledgeLoan, role: str) -> None:
    """The actor acts for the loan's lender (or borrower); a party or overseer is told why not, others 404."""
    actor.require_can_act()
    party = loan.lender_id if role == "lender" else loan.borrower_id
    if actor.owns(party):
        return
    if actor.sees_everything or actor.owns(loan.borrower_id) or actor.owns(loan.lender_id):
        raise (NotTheLender if role == "lender" else NotTheBorrower)(details={"pledge": loan.pk})
    raise PledgeNotFound(details={"pledge": loan.pk})


def _lender_account(loan: PledgeLoan) -> Account:
    """Where enforced units and sale proceeds go (set when the pledge was registered)."""
    if loan.lender_account is None:
        raise RuntimeError(f"pledge {loan.pk} is not registered: it has no lender account")
    return loan.lender_account


def _price_or_refuse(asset: Asset, day: date) -> Price:
    price = collateral_price(asset, day)
    if price is None:
        raise CollateralNotPriced(details={"asset": asset.code})
    return price


def _check_ltv_limit(loan: PledgeLoan, price: Price) -> int:
    value = price.fen * loan.quantity
    ltv = ltv_bp_of(loan.principal_fen, value)
    if ltv > loan.ltv_limit_bp:
        raise LtvLimitExceeded(
            details={
                "ltv_percent": bp_to_percent(ltv),
                "ltv_limit_percent": bp_to_percent(loan.ltv_limit_bp),
                "price": fen_to_str(price.fen),
                "collateral_value": fen_to_str(value),
                "principal": fen_to_str(loan.principal_fen),
            }
        )
    return ltv


def _mark(loan: PledgeLoan, price: Price, day: date) -> None:
    """Record the latest valuation on the loan (the loan book's LTV)."""
    loan.price_fen = price.fen
    loan.collateral_value_fen = price.fen * loan.quantity
    loan.ltv_bp = ltv_bp_of(loan.principal_fen, loan.collateral_value_fen)
    loan.valued_on = day


VALUATION_FIELDS = ["price_fen", "collateral_value_fen", "ltv_bp", "valued_on"]


def _check_available(account: Account, asset: Asset, quantity: int, serials: tuple[int, int] | None) -> None:
    """Refuse early a request for more than the account has available (registration checks again, locked)."""
    row = Balance.objects.filter(account=account, asset=asset).values_list("total", "held").first()
    available = row[0] - row[1] if row else 0
    if available < quantity:
        raise insufficient_available(account, asset, available, quantity)
    if serials is not None:
        first, last = serials
        covered = sum(
            min(b_last, last) - max(b_first, first) + 1
            for b_first, b_last in SerialBlock.objects.filter(
                account=account, asset=asset, state="available", first__lte=last, last__gte=first
            ).values_list("first", "last")
        )
        if covered != last - first + 1:
            raise SerialsNotAvailable(details={"serials": [first, last], "available_in_range": covered})


def _ranges_of(hold: Hold) -> list[list[int]]:
    blocks = SerialBlock.objects.filter(hold=hold).order_by("first").values_list("first", "last")
    return [[first, last] for first, last in blocks]


def _active_collateral(loan: PledgeLoan) -> list[PledgeCollateral]:
    return list(
        PledgeCollateral.objects.filter(loan=loan, hold__status=HoldStatus.ACTIVE).select_related("hold").order_by("id")
    )


def _terms_payload(loan: PledgeLoan) -> dict[str, Any]:
    return {
        "pledge": loan.pk,
        "reference": loan.registration_reference or "",
        "borrower": loan.borrower_id,
        "account": loan.account.number,
        "lender": loan.lender_id,
        "asset": loan.asset.code,
        "quantity": loan.quantity,
        "principal": fen_to_str(loan.principal_fen),
        "annual_rate_bp": loan.annual_rate_bp,
        "start": loan.start_date,
        "maturity": loan.maturity_date,
        "ltv_limit_bp": loan.ltv_limit_bp,
        "margin_call_bp": loan.margin_call_bp,
        "liquidation_bp": loan.liquidation_bp,
    }


# --- request, registration, rejection, withdrawal ------------------------------------------------------------
def _check_terms(
    *,
    quantity: int,
    principal_fen: int,
    annual_rate_bp: int,
    start_date: date,
    maturity_date: date,
    ltv_limit_bp: int,
    margin_call_bp: int,
    liquidation_bp: int,
    cure_period_days: int,
    serials: tuple[int, int] | None,
) -> None:
    problems: dict[str, str] = {}
    if not is_quantity(quantity):
        problems["quantity"] = f"A whole number of tonnes from 1 to {MAX_QUANTITY}."
    if not is_whole(principal_fen) or not 0 < principal_fen <= MAX_PRINCIPAL_FEN:
        problems["principal"] = "A positive amount."
    if not is_whole(annual_rate_bp) or not 0 <= annual_rate_bp <= BP:
        problems["annual_rate_bp"] = "Basis points from 0 to 10000."
    if maturity_date <= start_date:
        problems["maturity"] = "The loan matures after it starts."
    levels = (ltv_limit_bp, margin_call_bp, liquidation_bp)
    if not all(is_whole(v) for v in levels) or not 0 < ltv_limit_bp < margin_call_bp < liquidation_bp <= BP:
        problems["levels"] = "0 < LTV limit < margin-call level < liquidation level <= 10000 bp."
    if not is_whole(cure_period_days) or not 0 <= cure_period_days <= MAX_CURE_DAYS:
        problems["cure_period_days"] = f"From 0 to {MAX_CURE_DAYS} days."
    if serials is not None and (serials[0] < 1 or serials[1] - serials[0] + 1 != quantity):
        problems["serials"] = "The range [first, last] holds exactly the quantity."
    if problems:
        raise InvalidPledgeTerms(next(iter(problems.values())), details=problems)


@service
@idempotent_service("pledge_request")
def pledge_request(
    *,
    actor: Actor,
    account: Account,
    lender: Participant,
    asset: Asset,
    quantity: int,
    principal_fen: int,
    annual_rate_bp: int,
    maturity_date: date,
    ltv_limit_bp: int,
    margin_call_bp: int,
    liquidation_bp: int,
    start_date: date | None = None,
    cure_period_days: int = DEFAULT_CURE_DAYS,
    serials: tuple[int, int] | None = None,
    idempotency_key: str | None = None,
) -> PledgeLoan:
    """The borrower asks a bank for a loan against units it holds (nothing is frozen until registration).

    Refused when the account has fewer units available than asked (``insufficient_available``), when
    the asset has no price to value it by, or when the principal is above the LTV limit at that price.
    ``idempotency_key`` is claimed by ``@idempotent_service``; the body never sees it.
    """
    check_source(actor, account)
    today = clock.trading_day()
    start_date = start_date or today
    _check_terms(
        quantity=quantity,
        principal_fen=principal_fen,
        annual_rate_bp=annual_rate_bp,
        start_date=start_date,
        maturity_date=maturity_date,
        ltv_limit_bp=ltv_limit_bp,
        margin_call_bp=margin_call_bp,
        liquidation_bp=liquidation_bp,
        cure_period_days=cure_period_days,
        serials=serials,
    )
    if maturity_date <= today:
        raise InvalidPledgeTerms("The loan matures after today.", details={"maturity": "The loan matures after today."})
    if (
        lender.kind != ParticipantKind.FINANCIAL_INSTITUTION
        or not lender.is_active
        or lender.pk == account.participant_id
    ):
        raise InvalidLender(details={"lender": lender.pk})
    if not asset.serialised or asset.is_cash:
        raise AssetNotPledgeable(details={"asset": asset.code})
    request = {
        "account": account.number,
        "lender": lender.pk,
        "asset": asset.code,
        "quantity": quantity,
        "principal": fen_to_str(principal_fen),
        "annual_rate_bp": annual_rate_bp,
        "start": start_date,
        "maturity": maturity_date,
        "ltv_limit_bp": ltv_limit_bp,
        "margin_call_bp": margin_call_bp,
        "liquidation_bp": liquidation_bp,
        "cure_period_days": cure_period_days,
        "serials": list(serials) if serials else None,
    }
    price = _price_or_refuse(asset, today)
    loan = PledgeLoan(
        borrower_id=actor.member_participant_id,
        account=account,
        lender=lender,
        asset=asset,
        quantity=quantity,
        serials=list(serials) if serials else None,
        principal_fen=principal_fen,
        annual_rate_bp=annual_rate_bp,
        start_date=start_date,
        maturity_date=maturity_date,
        ltv_limit_bp=ltv_limit_bp,
        margin_call_bp=margin_call_bp,
        liquidation_bp=liquidation_bp,
        cure_period_days=cure_period_days,
        status=PledgeStatus.REQUESTED,
        requested_at=clock.now(),
    )
    _check_ltv_limit(loan, price)
    _check_available(account, asset, quantity, serials)
    _mark(loan, price, today)
    loan.save(force_insert=True)
    audit_record(
        actor=actor,
        action="pledge.request",
        obj=loan,
        payload={
            **_terms_payload(loan),
            "ltv_bp": loan.ltv_bp,
            "price": fen_to_str(price.fen),
            "serials": request["serials"],
        },
    )
    return loan


@service
def pledge_register(*, actor: Actor, loan: PledgeLoan, lender_account: Account | None = None) -> PledgeLoan:
    """The lender accepts: the units are frozen by a pledge hold on exact serial blocks and the registry
    records the registration reference. Refused if the borrower no longer has them available."""
    loan = _locked(loan)
    _require_party(actor, loan, "lender")
    target = _transition(loan, "register")
    if lender_account is None:
        lender_account = (
            Account.objects.filter(participant_id=loan.lender_id, kind=AccountKind.HOLDING).order_by("pk").first()
        )
        if lender_account is None:
            raise AccountNotFound("The lender has no holding account to receive enforced units or proceeds.")
    elif lender_account.kind != AccountKind.HOLDING or lender_account.participant_id != loan.lender_id:
        raise AccountNotFound(details={"account": lender_account.number})
    day, now = clock.trading_day(), clock.now()
    price = _price_or_refuse(loan.asset, day)
    _check_ltv_limit(loan, price)
    hold = hold_place(
        account=loan.account,
        asset=loan.asset,
        quantity=loan.quantity,
        kind=HoldKind.PLEDGE,
        reference=f"pledge:{loan.pk}",
        serials=tuple(loan.serials) if loan.serials else None,
    )
    ranges = _ranges_of(hold)
    PledgeCollateral.objects.create(
        loan=loan, hold=hold, kind=CollateralKind.INITIAL, quantity=loan.quantity, serial_ranges=ranges, created_at=now
    )
    loan.status = target
    loan.registration_reference = f"CNPL-{day.year}-{loan.pk:06d}"
    loan.registered_at = now
    loan.lender_account = lender_account
    _mark(loan, price, day)
    loan.save(update_fields=["status", "registration_reference", "registered_at", "lender_account", *VALUATION_FIELDS])
    audit_record(
        actor=actor,
        action="pledge.register",
        obj=loan,
        payload={
            **_terms_payload(loan),
            "lender_account": lender_account.number,
            "hold": hold.pk,
            "serials": ranges,
            "price": fen_to_str(price.fen),
            "ltv_bp": loan.ltv_bp,
        },
    )
    return loan


@service
def pledge_reject(*, actor: Actor, loan: PledgeLoan, reason: str = "") -> PledgeLoan:
    """The lender turns the request down; nothing was frozen, so nothing moves."""
    loan = _locked(loan)
    _require_party(actor, loan, "lender")
    loan.status = _transition(loan, "reject")
    loan.closed_on = clock.trading_day()
    loan.note = reason.strip()[:500]
    loan.save(update_fields=["status", "closed_on", "note"])
    audit_record(actor=actor, action="pledge.reject", obj=loan, payload={"pledge": loan.pk, "reason": loan.note})
    return loan


@service
def pledge_withdraw(*, actor: Actor, loan: PledgeLoan) -> PledgeLoan:
    """The borrower takes its request back before the lender has registered it."""
    loan = _locked(loan)
    _require_party(actor, loan, "borrower")
    loan.status = _transition(loan, "withdraw")
    loan.closed_on = clock.trading_day()
    loan.save(update_fields=["status", "closed_on"])
    audit_record(actor=actor, action="pledge.withdraw", obj=loan, payload={"pledge": loan.pk})
    return loan


# --- top-up and release ------------------------------------------------------------------------------------
@service
@idempotent_service("pledge_top_up")
def pledge_top_up(
    *,
    actor: Actor,
    loan: PledgeLoan,
    quantity: int,
    serials: tuple[int, int] | None = None,
    idempotency_key: str | None = None,
) -> PledgeCollateral:
    """The borrower pledges more units to a registered loan (e.g. to meet a margin call).

    The LTV is recomputed at the latest price; an open margin call that it now meets is closed.
    ``idempotency_key`` is claimed by ``@idempotent_service``; the body never sees it.
    """
    loan = _locked(loan)
    _require_party(actor, loan, "borrower")
    if not is_quantity(quantity):
        raise InvalidPledgeTerms("A top-up is a whole positive number of tonnes.", details={"quantity": str(quantity)})
    if serials is not None and (serials[0] < 1 or serials[1] - serials[0] + 1 != quantity):
        raise InvalidPledgeTerms("The range [first, last] holds exactly the quantity.", details={"serials": serials})
    _transition(loan, "top_up")
    day, now = clock.trading_day(), clock.now()
    hold = hold_place(
        account=loan.account,
        asset=loan.asset,
        quantity=quantity,
        kind=HoldKind.PLEDGE,
        reference=f"pledge:{loan.pk}",
        serials=serials,
    )
    collateral = PledgeCollateral.objects.create(
        loan=loan,
        hold=hold,
        kind=CollateralKind.TOP_UP,
        quantity=quantity,
        serial_ranges=_ranges_of(hold),
        created_at=now,
    )
    loan.quantity += quantity
    _mark(loan, collateral_price(loan.asset, day) or Price(loan.price_fen, None, ""), day)
    met = loan.margin_call if loan.margin_call_id and loan.ltv_bp < loan.margin_call_bp else None
    if met is not None:
        loan.margin_call = None
    loan.save(update_fields=["quantity", "margin_call", *VALUATION_FIELDS])
    audit_record(
        actor=actor,
        action="pledge.top_up",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "quantity": quantity,
            "pledged": loan.quantity,
            "hold": hold.pk,
            "serials": collateral.serial_ranges,
            "ltv_bp": loan.ltv_bp,
        },
    )
    if met is not None:
        audit_record(
            actor=actor,
            action="pledge.margin_call_met",
            obj=met,
            payload={"pledge": loan.pk, "margin_call": met.pk, "ltv_bp": loan.ltv_bp, "by": "top_up"},
        )
    return collateral


@service
def pledge_release(*, actor: Actor, loan: PledgeLoan, repayment_reference: str = "") -> PledgeLoan:
    """The lender records that the loan was repaid and releases the pledge: the units are available again.

    The repayment itself is paid outside the exchange's cash accounts; the amount due on the day
    (principal + interest) is recorded with the lender's payment reference.
    """
    loan = _locked(loan)
    _require_party(actor, loan, "lender")
    loan.status = _transition(loan, "release")
    day = clock.trading_day()
    collateral = _active_collateral(loan)
    released = holds_release([(c.hold, None) for c in collateral])
    loan.interest_fen = simple_interest_fen(loan.principal_fen, loan.annual_rate_bp, loan.start_date, day)
    loan.closed_on = day
    loan.margin_call = None
    loan.save(update_fields=["status", "interest_fen", "closed_on", "margin_call"])
    audit_record(
        actor=actor,
        action="pledge.release",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "released": sum(released.values()),
            "interest": fen_to_str(loan.interest_fen),
            "amount_due": fen_to_str(loan.principal_fen + loan.interest_fen),
            "repayment_reference": repayment_reference.strip()[:100],
        },
    )
    return loan


# --- default and enforcement --------------------------------------------------------------------------------
def default_grounds(loan: PledgeLoan, day: date) -> list[str]:
    """Why the lender may declare default on ``day`` (empty: it may not)."""
    grounds: list[str] = []
    if day > loan.maturity_date:
        grounds.append(DefaultReason.MATURED)
    if loan.margin_call is not None and day > loan.margin_call.cure_by:
        grounds.append(DefaultReason.MARGIN_CALL_MISSED)
    if loan.ltv_bp >= loan.liquidation_bp:
        grounds.append(DefaultReason.LIQUIDATION_LEVEL)
    return grounds


@service
def pledge_default(*, actor: Actor, loan: PledgeLoan) -> PledgeLoan:
    """The lender declares default: after maturity, after a missed margin call, or at the liquidation level.

    The units stay frozen until the lender enforces.
    """
    loan = _locked(loan)
    _require_party(actor, loan, "lender")
    target = _transition(loan, "default")
    day = clock.trading_day()
    grounds = default_grounds(loan, day)
    if not grounds:
        raise DefaultNotDue(
            details={
                "pledge": loan.pk,
                "maturity": loan.maturity_date.isoformat(),
                "margin_call_cure_by": loan.margin_call.cure_by.isoformat() if loan.margin_call else None,
                "ltv_percent": bp_to_percent(loan.ltv_bp),
                "liquidation_percent": bp_to_percent(loan.liquidation_bp),
            }
        )
    loan.status, loan.defaulted_on, loan.default_reason = target, day, grounds[0]
    loan.save(update_fields=["status", "defaulted_on", "default_reason"])
    audit_record(
        actor=actor,
        action="pledge.default",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "grounds": grounds,
            "ltv_bp": loan.ltv_bp,
        },
    )
    _notice(
        loan,
        f"Pledge {loan.registration_reference} declared in default on {day}",
        f"{loan.lender.name} declared pledge {loan.registration_reference} ({loan.quantity} t of {loan.asset.code}) "
        f"in default on {day}: {', '.join(grounds)}. The units stay frozen until the lender enforces.",
        kind=NoticeKind.DEFAULT,
    )
    return loan


@service
def pledge_enforce(
    *, actor: Actor, loan: PledgeLoan, method: str, price_fen: int | None = None
) -> PledgeEnforcement:
    """The lender enforces a defaulted pledge.

    ``transfer``: exactly the pledged blocks move into the lender's account at once (one
    ``pledge_enforcement`` journal entry consuming the pledge holds). ``sale``: the pledged units are
    offered on the exchange at the limit ``price_fen`` through an ordinary sell order that takes over
    them; the loan is enforced once the sale has ended and settled (see the module docstring).
    """
    loan = _locked(loan)
    _require_party(actor, loan, "lender")
    if method not in EnforcementMethod.values:
        raise InvalidInput("method is transfer or sale.", details={"method": method})
    if loan.status == PledgeStatus.DEFAULTED and PledgeEnforcement.objects.filter(loan=loan).exists():
        raise EnforcementInProgress(details={"pledge": loan.pk})
    target = _transition(loan, "enforce")
    day, now = clock.trading_day(), clock.now()
    interest = simple_interest_fen(loan.principal_fen, loan.annual_rate_bp, loan.start_date, day)
    due = loan.principal_fen + interest
    collateral = _active_collateral(loan)
    if method == EnforcementMethod.TRANSFER:
        txn, _ = journal_open(
            kind=TransactionKind.PLEDGE_ENFORCEMENT,
            actor=actor,
            idempotency_key=None,
            request={"pledge": loan.pk, "method": method},
            memo=f"Pledge {loan.registration_reference} enforced: units to the lender",
            metadata={"pledge": loan.pk, "reference": loan.registration_reference, "method": method},
        )
        posted = ledger_post(
            txn,
            [Leg(loan.asset, loan.account, _lender_account(loan), c.hold.remaining, hold=c.hold) for c in collateral],
            ended_hold_status=HoldStatus.ENFORCED,
        )
        enforcement = PledgeEnforcement.objects.create(
            loan=loan,
            method=method,
            status=EnforcementStatus.COMPLETED,
            day=day,
            interest_fen=interest,
            amount_due_fen=due,
            units_to_lender=loan.quantity,
            transaction=txn,
            started_at=now,
            completed_at=now,
        )
        loan.status, loan.closed_on, loan.interest_fen, loan.margin_call = target, day, interest, None
        loan.save(update_fields=["status", "closed_on", "interest_fen", "margin_call"])
        audit_record(
            actor=actor,
            action="pledge.enforce",
            obj=loan,
            payload={
                "pledge": loan.pk,
                "reference": loan.registration_reference,
                "method": method,
                "transaction": txn.pk,
                "units": loan.quantity,
                "lender_account": _lender_account(loan).number,
                "serials": [list(r) for leg_ranges in posted.ranges for r in leg_ranges],
                "amount_due": fen_to_str(due),
                "entry_digest": posted.digest,
            },
        )
        _enforcement_notice(loan, method, due)
        return enforcement

    if not is_whole(price_fen) or price_fen <= 0:
        raise InvalidInput("A sale on enforcement needs a positive limit price.", details={"price": str(price_fen)})
    lock_book(loan.asset_id)  # after the loan, before balances and holds (exchange.locks)
    sale_hold = holds_consolidate(
        [c.hold for c in collateral], kind=HoldKind.PLEDGE, reference=f"pledge:{loan.pk}:sale"
    )
    placed = enforcement_order_place(
        actor=actor,
        hold=sale_hold,
        account=loan.account,
        asset=loan.asset,
        price_fen=price_fen,
        client_order_id=f"pledge-{loan.pk}-enforcement",
    )
    enforcement = PledgeEnforcement.objects.create(
        loan=loan,
        method=method,
        status=EnforcementStatus.SELLING,
        day=day,
        interest_fen=interest,
        amount_due_fen=due,
        price_fen=price_fen,
        order=placed.order,
        sale_hold=sale_hold,
        started_at=now,
    )
    audit_record(
        actor=actor,
        action="pledge.enforce",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "method": method,
            "order": placed.order.pk,
            "price": fen_to_str(price_fen),
            "units": sale_hold.quantity,
            "trades": len(placed.trades),
            "amount_due": fen_to_str(due),
        },
    )
    _enforcement_notice(loan, method, due)
    return enforcement


@dataclass(slots=True)
class SaleFills:
    """What one settlement batch settled of a sale on enforcement."""

    units: int = 0
    turnover_fen: int = 0
    fees_fen: int = 0
    order_ended: bool = False


def sale_fills_settled(*, actor: Actor, fills: dict[int, SaleFills]) -> None:
    """Pay the lender from the net proceeds of the sale trades a settlement batch just settled.

    Called by ``settlement_run`` inside its transaction (order id -> fills), so the proceeds are never
    free in the borrower's account while the lender is owed. A sale whose order has ended is completed.
    """
    enforcements = lock_enforcements(
        PledgeEnforcement.objects.filter(order_id__in=fills).select_related("loan__account", "loan__lender_account")
    )
    cash = cash_asset()
    for enforcement in enforcements:
        fill, loan = fills[cast(int, enforcement.order_id)], enforcement.loan
        net = fill.turnover_fen - fill.fees_fen
        pay = min(net, enforcement.amount_due_fen - enforcement.paid_to_lender_fen)
        txn, digest = None, None
        if pay > 0:
            txn, _ = journal_open(
                kind=TransactionKind.PLEDGE_ENFORCEMENT,
                actor=actor,
                idempotency_key=None,
                request={"pledge": loan.pk, "order": enforcement.order_id, "proceeds": fen_to_str(net)},
                memo=f"Pledge {loan.registration_reference}: sale proceeds to the lender",
                metadata={"pledge": loan.pk, "reference": loan.registration_reference, "method": "sale"},
            )
            digest = ledger_post(txn, [Leg(cash, loan.account, _lender_account(loan), pay)]).digest
        enforcement.units_sold += fill.units
        enforcement.proceeds_fen += net
        enforcement.fees_fen += fill.fees_fen
        enforcement.paid_to_lender_fen += pay
        enforcement.save(update_fields=["units_sold", "proceeds_fen", "fees_fen", "paid_to_lender_fen"])
        audit_record(
            actor=actor,
            action="pledge.sale_settled",
            obj=loan,
            payload={
                "pledge": loan.pk,
                "order": enforcement.order_id,
                "units": fill.units,
                "turnover": fen_to_str(fill.turnover_fen),
                "seller_fees": fen_to_str(fill.fees_fen),
                "paid_to_lender": fen_to_str(pay),
                "to_borrower": fen_to_str(net - pay),
                "paid_so_far": fen_to_str(enforcement.paid_to_lender_fen),
                "amount_due": fen_to_str(enforcement.amount_due_fen),
                "transaction": txn.pk if txn else None,
                "entry_digest": digest,
            },
        )
        if fill.order_ended:
            _complete_sale(actor, enforcement)


def _complete_sale(actor: Actor, enforcement: PledgeEnforcement) -> None:
    """The sale has ended and settled: unsold units to the lender if it is owed, else back; loan enforced."""
    loan = _locked(enforcement.loan)
    hold = lock_hold(cast(int, enforcement.sale_hold_id))
    unsold = hold.remaining if hold.status == HoldStatus.ACTIVE else 0
    owed = enforcement.amount_due_fen - enforcement.paid_to_lender_fen
    day, now = clock.trading_day(), clock.now()
    txn, digest = None, None
    if unsold and owed > 0:
        txn, _ = journal_open(
            kind=TransactionKind.PLEDGE_ENFORCEMENT,
            actor=actor,
            idempotency_key=None,
            request={"pledge": loan.pk, "unsold": unsold},
            memo=f"Pledge {loan.registration_reference}: unsold units to the lender",
            metadata={"pledge": loan.pk, "reference": loan.registration_reference, "method": "sale"},
        )
        digest = ledger_post(
            txn,
            [Leg(loan.asset, loan.account, _lender_account(loan), unsold, hold=hold)],
            ended_hold_status=HoldStatus.ENFORCED,
        ).digest
        enforcement.units_to_lender, enforcement.transaction = unsold, txn
    elif unsold:
        holds_release([(hold, None)])
        enforcement.units_released = unsold
    enforcement.status, enforcement.completed_at = EnforcementStatus.COMPLETED, now
    enforcement.save(update_fields=["status", "completed_at", "units_to_lender", "units_released", "transaction"])
    loan.status, loan.closed_on, loan.interest_fen, loan.margin_call = (
        PledgeStatus.ENFORCED,
        day,
        enforcement.interest_fen,
        None,
    )
    loan.save(update_fields=["status", "closed_on", "interest_fen", "margin_call"])
    audit_record(
        actor=actor,
        action="pledge.enforce_complete",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "units_sold": enforcement.units_sold,
            "proceeds": fen_to_str(enforcement.proceeds_fen),
            "seller_fees": fen_to_str(enforcement.fees_fen),
            "paid_to_lender": fen_to_str(enforcement.paid_to_lender_fen),
            "surplus_to_borrower": fen_to_str(enforcement.surplus_fen),
            "shortfall": fen_to_str(enforcement.shortfall_fen),
            "unsold_to_lender": enforcement.units_to_lender,
            "unsold_released": enforcement.units_released,
            "transaction": txn.pk if txn else None,
            "entry_digest": digest,
        },
    )


@service
def pledge_sales_complete(*, actor: Actor | None = None) -> int:
    """Complete sales on enforcement whose order has ended with every trade settled; return how many.

    Settlement completes the ones whose last trades it settles; this catches orders that ended later
    (cancelled at a session close after their trades settled, or that never traded). Safe to run twice.
    """
    actor = actor or Actor.system("pledge-sales")
    unsettled = Trade.objects.filter(settlement_batch__isnull=True).values("sell_order_id")
    ready = lock_enforcements(
        PledgeEnforcement.objects.filter(status=EnforcementStatus.SELLING)
        .exclude(order__status=OrderStatus.OPEN)
        .exclude(order_id__in=unsettled)
        .select_related("loan")
    )
    if not ready:
        mark_unchanged()
        return 0
    for enforcement in ready:
        _complete_sale(actor, enforcement)
    return len(ready)


# --- the daily valuation ------------------------------------------------------------------------------------
@service
def pledges_value(*, day: date | None = None, actor: Actor | None = None) -> int:
    """Mark every registered pledge to market at ``day``'s close; return how many were valued.

    One valuation per pledge per day (a second run values nothing and changes nothing). A margin call
    is raised when LTV reaches the loan's margin-call level and no call is open (one call per breach,
    however many runs see it); an open call is closed when LTV is back below the level. Loans past
    maturity are flagged once. Calls and maturity notices to borrower and lender go in the notice outbox.
    """
    actor = actor or Actor.system("pledge-valuation")
    day = day or clock.trading_day()
    now = clock.now()
    loans = lock_pledge_loans(
        PledgeLoan.objects.filter(status=PledgeStatus.REGISTERED).select_related(
            "asset", "borrower", "lender", "margin_call"
        )
    )
    valued_today = set(
        PledgeValuation.objects.filter(loan__in=loans, day=day).values_list("loan_id", flat=True)
    )
    prices: dict[int, Price | None] = {}
    valuations: list[PledgeValuation] = []
    unpriced: list[int] = []
    for loan in loans:
        if loan.pk in valued_today:
            continue
        if loan.asset_id not in prices:
            prices[loan.asset_id] = collateral_price(loan.asset, day)
        price = prices[loan.asset_id]
        if price is None:
            unpriced.append(loan.pk)
            continue
        _mark(loan, price, day)
        valuations.append(
            PledgeValuation(
                loan=loan,
                day=day,
                price_fen=price.fen,
                price_day=price.day,
                price_source=price.source,
                quantity=loan.quantity,
                value_fen=loan.collateral_value_fen,
                principal_fen=loan.principal_fen,
                ltv_bp=loan.ltv_bp,
                created_at=now,
            )
        )
    if not valuations:
        if unpriced:
            logger.warning("pledges without a price were not valued", extra={"day": day, "pledges": unpriced})
        mark_unchanged()
        return 0
    PledgeValuation.objects.bulk_create(valuations)
    calls, met, matured = [], [], []
    for valuation in valuations:
        loan = valuation.loan
        if loan.ltv_bp >= loan.margin_call_bp and loan.margin_call_id is None:
            call = MarginCall.objects.create(
                loan=loan,
                valuation=valuation,
                raised_on=day,
                ltv_bp=loan.ltv_bp,
                level_bp=loan.margin_call_bp,
                cure_by=day + timedelta(days=loan.cure_period_days),
                notified=[],  # delivery is recorded on the call's notices (exchange.Notice)
                created_at=now,
            )
            loan.margin_call = call
            calls.append(call)
            _margin_call_notices(loan, call, valuation)
            audit_record(
                actor=actor,
                action="pledge.margin_call",
                obj=call,
                payload={
                    "pledge": loan.pk,
                    "reference": loan.registration_reference,
                    "day": day,
                    "ltv_bp": loan.ltv_bp,
                    "level_bp": loan.margin_call_bp,
                    "price": fen_to_str(valuation.price_fen),
                    "cure_by": call.cure_by,
                    "notify": _addresses(loan),
                },
            )
        elif loan.ltv_bp < loan.margin_call_bp and loan.margin_call_id is not None:
            audit_record(
                actor=actor,
                action="pledge.margin_call_met",
                obj=loan.margin_call,
                payload={"pledge": loan.pk, "margin_call": loan.margin_call_id, "ltv_bp": loan.ltv_bp, "by": "price"},
            )
            met.append(loan.pk)
            loan.margin_call = None
        if day > loan.maturity_date and loan.past_maturity_on is None:
            loan.past_maturity_on = day
            matured.append(loan.pk)
            _maturity_notices(loan, day)
            audit_record(
                actor=actor,
                action="pledge.past_maturity",
                obj=loan,
                payload={"pledge": loan.pk, "reference": loan.registration_reference, "maturity": loan.maturity_date},
            )
    PledgeLoan.objects.bulk_update(
        [v.loan for v in valuations], [*VALUATION_FIELDS, "margin_call", "past_maturity_on"]
    )
    audit_record(
        actor=actor,
        action="pledge.valuation_run",
        obj=("pledge_valuation", day.isoformat()),
        payload={
            "day": day,
            "valued": [[v.loan_id, v.ltv_bp] for v in valuations],
            "unpriced": unpriced,
            "margin_calls": [c.pk for c in calls],
            "margin_calls_met": met,
            "past_maturity": matured,
        },
    )
    crash_point("pledges.valued")
    return len(valuations)


# --- notices -----------------------------------------------------------------------------------------------
def _addresses(loan: PledgeLoan) -> list[str]:
    return [p.email for p in (loan.borrower, loan.lender) if p.email]


def _notice(loan: PledgeLoan, subject: str, body: str, *, kind: str, obj: tuple[str, Any] | None = None) -> None:
    """Queue one notice to each party (borrower and lender) that has a notice address, in this transaction
    (exchange.services.notices sends it and records its delivery)."""
    notice_add(
        recipients=(loan.borrower, loan.lender), kind=kind, subject=subject, body=body, obj=obj or ("pledge", loan.pk)
    )


def _enforcement_notice(loan: PledgeLoan, method: str, due_fen: int) -> None:
    _notice(
        loan,
        f"Pledge {loan.registration_reference} is being enforced ({method})",
        f"{loan.lender.name} enforces pledge {loan.registration_reference} ({loan.quantity} t of {loan.asset.code}) "
        f"by {method}; amount due {fen_to_str(due_fen)} yuan.",
        kind=NoticeKind.ENFORCEMENT,
    )


def _margin_call_notices(loan: PledgeLoan, call: MarginCall, valuation: PledgeValuation) -> None:
    subject = (
        f"Margin call on pledge {loan.registration_reference}: LTV {bp_to_percent(call.ltv_bp)}% "
        f"(call level {bp_to_percent(call.level_bp)}%)"
    )
    body = "\n".join(
        [
            sentence(
                f"Pledge {loan.registration_reference}: {loan.quantity} t of {loan.asset.code} pledged by "
                f"{loan.borrower.name} to {loan.lender.name}"
            ),
            f"Valued on {valuation.day} at {fen_to_str(valuation.price_fen)} yuan/t: "
            f"{fen_to_str(valuation.value_fen)} yuan against a principal of {fen_to_str(loan.principal_fen)} yuan.",
            f"Loan to value {bp_to_percent(call.ltv_bp)}% has reached the margin-call level "
            f"{bp_to_percent(call.level_bp)}% (liquidation level {bp_to_percent(loan.liquidation_bp)}%).",
            f"Top up the collateral or repay by {call.cure_by}; after that day the lender may declare default.",
        ]
    )
    _notice(loan, subject, body, kind=NoticeKind.MARGIN_CALL, obj=("margin_call", call.pk))


def _maturity_notices(loan: PledgeLoan, day: date) -> None:
    subject = f"Pledge {loan.registration_reference} is past its maturity ({loan.maturity_date})"
    body = (
        f"Pledge {loan.registration_reference} ({loan.quantity} t of {loan.asset.code}, principal "
        f"{fen_to_str(loan.principal_fen)} yuan) matured on {loan.maturity_date} and was still registered on {day}. "
        "The lender may declare default."
    )
    _notice(loan, subject, body, kind=NoticeKind.PAST_MATURITY)


__all__ = [
    "CollateralNotPriced",
    "DefaultNotDue",
    "EnforcementInProgress",
    "InvalidPledgeTransition",
    "LtvLimitExceeded",
    "NotTheBorrower",
    "NotTheLender",
    "SaleFills",
    "bp_to_percent",
    "ltv_bp_of",
    "pledge_default",
    "pledge_enforce",
    "pledge_register",
    "pledge_reject",
    "pledge_release",
    "pledge_request",
    "pledge_sales_complete",
    "pledge_top_up",
    "pledge_withdraw",
    "pledges_value",
    "sale_fills_settled",
    "simple_interest_fen",
]
