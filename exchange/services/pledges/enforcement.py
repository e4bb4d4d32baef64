"""Default and enforcement of a pledge."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import cast

from django.utils.translation import gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import InvalidInput
from core.errors import translatable as _
from core.i18n import registry_text
from core.limits import is_whole
from core.money import fen_to_str
from exchange.locks import lock_book, lock_enforcements, lock_hold
from exchange.models import (
    CollateralKind,
    DefaultReason,
    EnforcementMethod,
    EnforcementStatus,
    Hold,
    HoldKind,
    HoldStatus,
    OrderStatus,
    PledgeCollateral,
    PledgeEnforcement,
    PledgeLoan,
    PledgeStatus,
    Trade,
    TradingMode,
    Transaction,
    TransactionKind,
)
from exchange.models.notices import NoticeKind
from exchange.models.pledges import BP, OPEN_ENFORCEMENT
from exchange.selectors.pledges import Price
from exchange.services.agreements import enforcement_listing_post
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.cash import cash_asset
from exchange.services.instrument_rules import InstrumentRules, fee_for, instrument_rules
from exchange.services.ledger import (
    Leg,
    holds_consolidate,
    holds_release,
    journal_open,
    ledger_post,
)
from exchange.services.orders import enforcement_order_place
from exchange.services.pledges.common import (
    active_collateral,
    asset_label,
    cash_collateral,
    enforcement_notice,
    lender_account_of,
    locked_loan,
    notice,
    price_or_refuse,
    ranges_of,
    require_party,
    require_units,
    transition,
    valuation_band_bp,
)
from exchange.services.pledges.errors import (
    DebtCoveredByCash,
    DefaultNotDue,
    EnforcementExceedsDebt,
    EnforcementInProgress,
    InvalidCourtOrder,
    NoValuationProposed,
    ValuationOutOfBand,
)
from exchange.services.pledges.terms import bp_to_percent, loan_interest_fen


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
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    target = transition(loan, "default")
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
    terms = {
        "reference": loan.registration_reference,
        "day": day.isoformat(),
        "lender": loan.lender.name,
        "quantity": f"{loan.quantity:,}",
        "asset": asset_label(loan),
        "grounds": ", ".join(grounds),
    }
    notice(
        loan,
        registry_text(gettext_noop("Pledge %(reference)s declared in default on %(day)s"), terms),
        registry_text(
            gettext_noop(
                "%(lender)s declared pledge %(reference)s (%(quantity)s t of %(asset)s) in default on %(day)s: "
                "%(grounds)s. The units stay frozen until the lender enforces."
            ),
            terms,
        ),
        kind=NoticeKind.DEFAULT,
    )
    return loan


MAX_COSTS_FEN = 10**13
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _debt(loan: PledgeLoan, day: date, costs_fen: int) -> tuple[int, int]:
    """(interest to ``day``, the debt a new round secures): principal + interest + costs, less what
    earlier rounds gave the lender."""
    interest = loan_interest_fen(loan, day)
    received = sum(e.received_by_lender_fen for e in PledgeEnforcement.objects.filter(loan=loan))
    earlier_costs = sum(PledgeEnforcement.objects.filter(loan=loan).values_list("costs_fen", flat=True))
    return interest, max(loan.principal_fen + interest + earlier_costs + costs_fen - received, 0)


def _check_costs(costs_fen: int) -> None:
    if not is_whole(costs_fen) or not 0 <= costs_fen <= MAX_COSTS_FEN:
        raise InvalidInput(_("Costs are an amount from 0."), details={"costs": str(costs_fen)})


def _open_enforcement(loan: PledgeLoan) -> PledgeEnforcement | None:
    found = lock_enforcements(PledgeEnforcement.objects.filter(loan=loan, status__in=OPEN_ENFORCEMENT))
    return found[0] if found else None


def _check_band(loan: PledgeLoan, price_fen: int, day: date) -> Price:
    """The agreed price lies within the band around the reference price of ``day``."""
    asset = require_units(loan, "enforce")
    reference = price_or_refuse(asset, day)
    band = valuation_band_bp(asset, day)
    low, high = -(-reference.fen * (BP - band) // BP), reference.fen * (BP + band) // BP
    if not low <= price_fen <= high:
        raise ValuationOutOfBand(
            details={
                "price": fen_to_str(price_fen),
                "reference_price": fen_to_str(reference.fen),
                "band_percent": bp_to_percent(band),
                "lowest": fen_to_str(low),
                "highest": fen_to_str(high),
            }
        )
    return reference


def _take_and_release(
    actor: Actor, loan: PledgeLoan, units: int, memo: str, method: str
) -> tuple[Transaction | None, str | None, int, list[list[int]]]:
    """Move ``units`` pledged units (the pledge's holds in order, lowest blocks first) to the lender and
    release the rest to the borrower, in this transaction. Return (entry, digest, released, ranges)."""
    collateral = active_collateral(loan)
    legs: list[Leg] = []
    left = units
    for c in collateral:
        take = min(left, c.hold.remaining)
        if take:
            legs.append(Leg(require_units(loan, "enforce"), loan.account, lender_account_of(loan), take, hold=c.hold))
            left -= take
    txn, digest, ranges = None, None, []
    if legs:
        txn, _unused = journal_open(
            kind=TransactionKind.PLEDGE_ENFORCEMENT,
            actor=actor,
            idempotency_key=None,
            request={"pledge": loan.pk, "method": method, "units": units},
            memo=memo,
            metadata={"pledge": loan.pk, "reference": loan.registration_reference, "method": method},
        )
        posted = ledger_post(txn, legs, ended_hold_status=HoldStatus.ENFORCED)
        digest = posted.digest
        ranges = [list(r) for leg_ranges in posted.ranges for r in leg_ranges]
    released = holds_release([(c.hold, None) for c in collateral])
    return txn, digest, sum(released.values()), ranges


def _take_cash(actor: Actor, loan: PledgeLoan, owed_fen: int, method: str) -> int:
    """Cash held as substitute collateral goes to the lender first, up to ``owed_fen``; the rest of it is
    released to the borrower. Return what the lender took. In the caller's transaction, after the book."""
    rows = cash_collateral(loan)
    if not rows:
        return 0
    cash, legs, taken = cash_asset(), [], 0
    txn, digest = None, None
    for c in rows:
        take = min(c.hold.remaining, owed_fen - taken)
        if take > 0:
            legs.append(Leg(cash, loan.account, lender_account_of(loan), take, hold=c.hold))
            taken += take
    if legs:
        txn, _unused = journal_open(
            kind=TransactionKind.PLEDGE_ENFORCEMENT,
            actor=actor,
            idempotency_key=None,
            request={"pledge": loan.pk, "method": method, "cash": fen_to_str(taken)},
            memo=registry_text(
                gettext_noop("Pledge %(reference)s: cash collateral to the lender"),
                {"reference": loan.registration_reference},
            ),
            metadata={"pledge": loan.pk, "reference": loan.registration_reference, "method": method},
        )
        digest = ledger_post(txn, legs, ended_hold_status=HoldStatus.ENFORCED).digest
    released = sum(holds_release([(c.hold, None) for c in rows]).values())
    loan.cash_collateral_fen = 0
    loan.save(update_fields=["cash_collateral_fen"])
    audit_record(
        actor=actor,
        action="pledge.cash_collateral_taken",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "method": method,
            "owed": fen_to_str(owed_fen),
            "cash_to_lender": fen_to_str(taken),
            "cash_released": fen_to_str(released),
            "transaction": txn.pk if txn else None,
            "entry_digest": digest,
        },
    )
    return taken


def _cash_held(loan: PledgeLoan) -> int:
    return sum(c.hold.remaining for c in cash_collateral(loan))


def fewest_units_paying(owed_fen: int, price_fen: int, fee_bp: int) -> int | None:
    """The fewest whole tonnes whose sale at ``price_fen``, less the seller's fee of ``fee_bp`` on the
    turnover (rounded as a fill's fee is, ``instrument_rules.fee_for``), pays ``owed_fen``; None if no number does
    (a fee of the whole turnover)."""
    if owed_fen <= 0:
        return 0
    if fee_bp >= BP:
        return None
    units = max(-(-owed_fen * BP // (price_fen * (BP - fee_bp))), 1)

    def net(n: int) -> int:
        return n * price_fen - fee_for(n * price_fen, fee_bp)

    while units > 1 and net(units - 1) >= owed_fen:
        units -= 1
    while net(units) < owed_fen:
        units += 1
    return units


def sale_units(rules: InstrumentRules, *, owed_fen: int, price_fen: int, pledged: int) -> int:
    """How many of the ``pledged`` units a sale on enforcement offers: only what the debt needs.

    The fewest units whose sale at the lender's price ``price_fen``, less the seller's fee the borrower
    bears, pays ``owed_fen`` (the debt less the cash collateral taken first), rounded up to the lot and to
    the smallest order of the mode that size trades in; never more than is pledged. The lender is paid from
    the proceeds up to the debt and the rest of the pledged rights are the pledgor's (Civil Code arts. 436
    and 438), so units the debt does not need are not sold: they stay pledged, for another round if the
    sale falls short, and are released once the debt is paid (docs/pledges.md, Enforcement).
    """
    units = 0
    while True:
        mode = rules.sale_mode(max(units, 1))  # the fee and the smallest order follow the size's mode
        fewest = fewest_units_paying(owed_fen, price_fen, mode.seller_fee_bp if mode else 0)
        if fewest is None:
            return pledged
        need = max(fewest, mode.min_quantity if mode else 1)
        need = -(-need // rules.lot) * rules.lot
        if need >= pledged:
            return pledged
        if need <= units:  # stable (a larger size's mode may charge less: never offer less than found)
            return units
        units = need


def _first_units(collateral: list[PledgeCollateral], units: int) -> dict[Hold, int]:
    """The pledge's holds, and how much of each, that hand ``units`` to a sale: the oldest collateral first
    (the order units go to the lender by agreement), each hold's lowest blocks."""
    take: dict[Hold, int] = {}
    left = units
    for c in collateral:
        n = min(left, c.hold.remaining)
        if n:
            take[c.hold] = n
            left -= n
    return take


def _close(loan: PledgeLoan, day: date, interest: int) -> None:
    loan.status, loan.closed_on, loan.interest_fen, loan.margin_call = PledgeStatus.ENFORCED, day, interest, None
    loan.save(update_fields=["status", "closed_on", "interest_fen", "margin_call"])


@service
def pledge_enforce(
    *,
    actor: Actor,
    loan: PledgeLoan,
    method: str,
    price_fen: int | None = None,
    costs_fen: int = 0,
) -> PledgeEnforcement:
    """The lender starts enforcing a defaulted pledge, one of two ways (Civil Code arts. 436-438):

    ``agreement``: it proposes a value per tonne within the valuation band around the reference price;
    nothing moves until the borrower agrees (``pledge_enforcement_agree``). ``sale``: the pledged units
    the debt needs (``sale_units``; the rest stay pledged) are offered on the exchange at the limit
    ``price_fen`` through an ordinary sell order that takes them over: in the continuous book where the
    market's rulebook runs one, else (the national markets) a sell listing under the listing agreement, a
    public block listing from the block minimum, that buyers pick (see the package docstring). The same
    settlement pays the lender first either way. ``costs_fen``: the lender's costs of enforcement, part of
    the debt.
    Enforcement on a court order is the registry's step, ``pledge_enforce_court_order``.
    """
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    if method not in (EnforcementMethod.AGREEMENT, EnforcementMethod.SALE):
        raise InvalidInput(_("method is agreement or sale."), details={"method": method})
    if _open_enforcement(loan) is not None:
        raise EnforcementInProgress(details={"pledge": loan.pk})
    transition(loan, "enforce")
    asset = require_units(loan, "enforce")
    _check_costs(costs_fen)
    if not is_whole(price_fen) or cast(int, price_fen) <= 0:
        raise InvalidInput(_("Enforcement needs a positive price."), details={"price": str(price_fen)})
    price_fen = cast(int, price_fen)
    day, now = clock.trading_day(), clock.now()
    interest, due = _debt(loan, day, costs_fen)
    collateral = active_collateral(loan)

    if method == EnforcementMethod.AGREEMENT:
        reference = _check_band(loan, price_fen, day)
        enforcement = PledgeEnforcement.objects.create(
            loan=loan,
            method=method,
            status=EnforcementStatus.PROPOSED,
            day=day,
            interest_fen=interest,
            costs_fen=costs_fen,
            amount_due_fen=due,
            price_fen=price_fen,
            started_at=now,
        )
        audit_record(
            actor=actor,
            action="pledge.enforce_propose",
            obj=loan,
            payload={
                "pledge": loan.pk,
                "reference": loan.registration_reference,
                "method": method,
                "price": fen_to_str(price_fen),
                "reference_price": fen_to_str(reference.fen),
                "interest": fen_to_str(interest),
                "costs": fen_to_str(costs_fen),
                "amount_due": fen_to_str(due),
            },
        )
        terms = {
            "reference": loan.registration_reference,
            "lender": loan.lender.name,
            "price": fen_to_str(price_fen),
            "due": fen_to_str(due),
        }
        notice(
            loan,
            registry_text(
                gettext_noop("Pledge %(reference)s: the lender proposes to take units at %(price)s yuan/t"), terms
            ),
            registry_text(
                gettext_noop(
                    "%(lender)s proposes to enforce pledge %(reference)s by agreement: units up to the debt of "
                    "%(due)s yuan at %(price)s yuan a tonne; the rest are released. The borrower agrees or declines."
                ),
                terms,
            ),
            kind=NoticeKind.ENFORCEMENT,
        )
        return enforcement

    held = _cash_held(loan)
    if held >= due:  # the cash is taken first and pays it all: nothing is left to sell
        raise DebtCoveredByCash(
            details={"pledge": loan.pk, "debt": fen_to_str(due), "cash_collateral": fen_to_str(held)}
        )
    lock_book(asset.pk)  # after the loan, before balances and holds (exchange.locks)
    cash_taken = _take_cash(actor, loan, due, method)  # cash held as collateral is taken first
    rules = instrument_rules(asset, day)
    pledged = sum(c.hold.remaining for c in collateral)
    offered = sale_units(rules, owed_fen=due - cash_taken, price_fen=price_fen, pledged=pledged)
    take = _first_units(collateral, offered)  # the rest stays pledged under its own holds
    sale_hold = holds_consolidate(
        list(take), kind=HoldKind.PLEDGE, reference=f"pledge:{loan.pk}:sale", take={h.pk: n for h, n in take.items()}
    )
    rounds = PledgeEnforcement.objects.filter(loan=loan, method=EnforcementMethod.SALE).count()
    client_order_id = f"pledge-{loan.pk}-enforcement" + (f"-{rounds + 1}" if rounds else "")
    if rules.mode(TradingMode.CONTINUOUS) is not None:
        placed = enforcement_order_place(
            actor=actor,
            hold=sale_hold,
            account=loan.account,
            asset=asset,
            price_fen=price_fen,
            client_order_id=client_order_id,
        )
        order, trades = placed.order, len(placed.trades)
    else:  # the national markets: a listing (listing agreement, block agreement when large) that buyers pick
        order = enforcement_listing_post(
            actor=actor,
            hold=sale_hold,
            account=loan.account,
            asset=asset,
            price_fen=price_fen,
            client_order_id=client_order_id,
        )
        trades = 0
    enforcement = PledgeEnforcement.objects.create(
        loan=loan,
        method=method,
        status=EnforcementStatus.SELLING,
        day=day,
        interest_fen=interest,
        costs_fen=costs_fen,
        amount_due_fen=due,
        price_fen=price_fen,
        order=order,
        sale_hold=sale_hold,
        cash_to_lender_fen=cash_taken,
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
            "order": order.pk,
            "trading_mode": order.trading_mode,
            "price": fen_to_str(price_fen),
            "units": sale_hold.quantity,
            "units_kept": pledged - sale_hold.quantity,
            "trades": trades,
            "cash_to_lender": fen_to_str(cash_taken),
            "interest": fen_to_str(interest),
            "costs": fen_to_str(costs_fen),
            "amount_due": fen_to_str(due),
        },
    )
    enforcement_notice(loan, method, due)
    return enforcement


@service
def pledge_enforcement_agree(*, actor: Actor, loan: PledgeLoan) -> PledgeEnforcement:
    """The borrower agrees the lender's valuation: units worth the debt and no more move to the lender.

    As many whole tonnes as the debt covers at the agreed price (``value`` = units x price <= debt) go to
    the lender's account; every other pledged unit is released to the borrower; the loan is enforced. A
    debt above the value of all the units leaves a shortfall, the lender's claim outside the ledger. The
    price is checked against the band again on the day of agreement.
    """
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    proposal = _open_enforcement(loan)
    if proposal is None or proposal.status != EnforcementStatus.PROPOSED:
        raise NoValuationProposed(details={"pledge": loan.pk})
    transition(loan, "enforce")
    day, now = clock.trading_day(), clock.now()
    price_fen = cast(int, proposal.price_fen)
    reference = _check_band(loan, price_fen, day)
    cash_taken = _take_cash(actor, loan, proposal.amount_due_fen, EnforcementMethod.AGREEMENT)
    pledged = sum(c.hold.remaining for c in active_collateral(loan))
    units = min(pledged, (proposal.amount_due_fen - cash_taken) // price_fen)
    txn, digest, released, ranges = _take_and_release(
        actor,
        loan,
        units,
        registry_text(
            gettext_noop("Pledge %(reference)s enforced by agreement"), {"reference": loan.registration_reference}
        ),
        EnforcementMethod.AGREEMENT,
    )
    proposal.status, proposal.completed_at, proposal.transaction = EnforcementStatus.COMPLETED, now, txn
    proposal.units_to_lender, proposal.value_fen, proposal.units_released = units, units * price_fen, released
    proposal.cash_to_lender_fen = cash_taken
    proposal.save(
        update_fields=[
            "status",
            "completed_at",
            "transaction",
            "units_to_lender",
            "value_fen",
            "units_released",
            "cash_to_lender_fen",
        ]
    )
    _close(loan, day, proposal.interest_fen)
    audit_record(
        actor=actor,
        action="pledge.enforce_agreed",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "method": EnforcementMethod.AGREEMENT,
            "price": fen_to_str(price_fen),
            "reference_price": fen_to_str(reference.fen),
            "amount_due": fen_to_str(proposal.amount_due_fen),
            "cash_to_lender": fen_to_str(cash_taken),
            "units_to_lender": units,
            "value_to_lender": fen_to_str(proposal.value_fen),
            "units_released": released,
            "shortfall": fen_to_str(proposal.shortfall_fen),
            "serials": ranges,
            "transaction": txn.pk if txn else None,
            "entry_digest": digest,
        },
    )
    enforcement_notice(loan, EnforcementMethod.AGREEMENT, proposal.amount_due_fen)
    return proposal


@service
def pledge_enforcement_decline(*, actor: Actor, loan: PledgeLoan) -> PledgeEnforcement:
    """The borrower declines the lender's valuation: nothing moves; the lender may sell or go to court."""
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    proposal = _open_enforcement(loan)
    if proposal is None or proposal.status != EnforcementStatus.PROPOSED:
        raise NoValuationProposed(details={"pledge": loan.pk})
    proposal.status, proposal.completed_at = EnforcementStatus.DECLINED, clock.now()
    proposal.save(update_fields=["status", "completed_at"])
    price_fen = cast(int, proposal.price_fen)  # a valuation proposed by agreement always names its price
    audit_record(
        actor=actor,
        action="pledge.enforce_declined",
        obj=loan,
        payload={"pledge": loan.pk, "reference": loan.registration_reference, "price": fen_to_str(price_fen)},
    )
    return proposal


@service
def pledge_enforce_court_order(
    *,
    actor: Actor,
    loan: PledgeLoan,
    court_reference: str,
    document_sha256: str,
    units_to_lender: int,
    price_fen: int,
    costs_fen: int = 0,
) -> PledgeEnforcement:
    """The registry executes a court order on a registered or defaulted pledge.

    The order names its reference, the SHA-256 of its document, the units the lender takes and the value
    per tonne it states; the registry moves those units to the lender and releases the rest. An order
    whose units are worth more than the debt is refused (``pledge_enforcement_exceeds_debt``): the
    registry does not give the lender the borrower's surplus.
    """
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)
    loan = locked_loan(loan)
    court_reference = court_reference.strip()
    document_sha256 = document_sha256.strip().lower()
    problems: dict[str, str] = {}
    if not court_reference or len(court_reference) > 100:
        problems["court_reference"] = "The order's reference, 1 to 100 characters."
    if not SHA256_HEX.match(document_sha256):
        problems["document_sha256"] = "64 hexadecimal digits."
    if not is_whole(units_to_lender) or units_to_lender < 0:
        problems["units_to_lender"] = "A whole number of tonnes from 0."
    if not is_whole(price_fen) or price_fen <= 0:
        problems["price"] = "A positive value per tonne."
    if problems:
        raise InvalidCourtOrder(next(iter(problems.values())), details=problems)
    _check_costs(costs_fen)
    if _open_enforcement(loan) is not None:
        raise EnforcementInProgress(details={"pledge": loan.pk})
    transition(loan, "court")
    require_units(loan, "court")
    day, now = clock.trading_day(), clock.now()
    interest, due = _debt(loan, day, costs_fen)
    pledged = sum(c.hold.remaining for c in active_collateral(loan))
    if units_to_lender > pledged:
        raise InvalidCourtOrder(
            _("The order names more units than are pledged."),
            details={"units_to_lender": units_to_lender, "pledged": pledged},
        )
    value = units_to_lender * price_fen
    cash_first = min(_cash_held(loan), due)  # cash held as collateral is taken first
    if value > due - cash_first:
        raise EnforcementExceedsDebt(
            details={
                "value": fen_to_str(value),
                "amount_due": fen_to_str(due),
                "cash_collateral": fen_to_str(cash_first),
                "units_to_lender": units_to_lender,
            }
        )
    cash_taken = _take_cash(actor, loan, due, EnforcementMethod.COURT)
    txn, digest, released, ranges = _take_and_release(
        actor,
        loan,
        units_to_lender,
        registry_text(
            gettext_noop("Pledge %(reference)s: court order %(order)s"),
            {"reference": loan.registration_reference, "order": court_reference},
        ),
        "court",
    )
    enforcement = PledgeEnforcement.objects.create(
        loan=loan,
        method=EnforcementMethod.COURT,
        status=EnforcementStatus.COMPLETED,
        day=day,
        interest_fen=interest,
        costs_fen=costs_fen,
        amount_due_fen=due,
        price_fen=price_fen,
        value_fen=value,
        cash_to_lender_fen=cash_taken,
        units_to_lender=units_to_lender,
        units_released=released,
        court_reference=court_reference,
        court_document_sha256=document_sha256,
        transaction=txn,
        started_at=now,
        completed_at=now,
    )
    _close(loan, day, interest)
    audit_record(
        actor=actor,
        action="pledge.enforce_court_order",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "court_reference": court_reference,
            "document_sha256": document_sha256,
            "price": fen_to_str(price_fen),
            "amount_due": fen_to_str(due),
            "cash_to_lender": fen_to_str(cash_taken),
            "units_to_lender": units_to_lender,
            "value_to_lender": fen_to_str(value),
            "units_released": released,
            "serials": ranges,
            "transaction": txn.pk if txn else None,
            "entry_digest": digest,
        },
    )
    enforcement_notice(loan, EnforcementMethod.COURT, due)
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
        owed = enforcement.amount_due_fen - enforcement.cash_to_lender_fen - enforcement.paid_to_lender_fen
        pay = min(net, owed)
        txn, digest = None, None
        if pay > 0:
            txn, _replayed = journal_open(
                kind=TransactionKind.PLEDGE_ENFORCEMENT,
                actor=actor,
                idempotency_key=None,
                request={"pledge": loan.pk, "order": enforcement.order_id, "proceeds": fen_to_str(net)},
                memo=registry_text(
                    gettext_noop("Pledge %(reference)s: sale proceeds to the lender"),
                    {"reference": loan.registration_reference},
                ),
                metadata={"pledge": loan.pk, "reference": loan.registration_reference, "method": "sale"},
            )
            digest = ledger_post(txn, [Leg(cash, loan.account, lender_account_of(loan), pay)]).digest
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
    """The sale has ended and settled. Unsold units, and the units the sale did not offer, stay pledged while
    the lender is owed (for another round: never handed to the lender), else go back to the borrower; a paid
    loan, or one with nothing left pledged, is enforced."""
    loan = locked_loan(enforcement.loan)
    kept = active_collateral(loan)  # the units the sale did not offer (the debt did not need them)
    kept_units = sum(c.hold.remaining for c in kept)
    hold = lock_hold(cast(int, enforcement.sale_hold_id))
    unsold = hold.remaining if hold.status == HoldStatus.ACTIVE else 0
    owed = enforcement.amount_due_fen - enforcement.cash_to_lender_fen - enforcement.paid_to_lender_fen
    day, now = clock.trading_day(), clock.now()
    still_pledged = 0
    if owed > 0 and (unsold or kept_units):
        if unsold:
            PledgeCollateral.objects.create(
                loan=loan,
                hold_id=hold.pk,
                kind=CollateralKind.UNSOLD,
                quantity=unsold,
                serial_ranges=ranges_of(cast(Hold, enforcement.sale_hold)),
                created_at=now,
            )
        enforcement.units_unsold = unsold
        still_pledged = unsold + kept_units
        loan.quantity = still_pledged
        loan.interest_fen = enforcement.interest_fen
        loan.save(update_fields=["quantity", "interest_fen"])
    elif unsold or kept_units:  # the debt is paid: what was not sold, or not offered, goes back
        releases: list[tuple[Hold, int | None]] = [(c.hold, None) for c in kept]
        if unsold:
            releases.insert(0, (hold, None))
        holds_release(releases)
        enforcement.units_released = unsold + kept_units
    enforcement.status, enforcement.completed_at = EnforcementStatus.COMPLETED, now
    enforcement.save(update_fields=["status", "completed_at", "units_unsold", "units_released"])
    if not still_pledged:
        _close(loan, day, enforcement.interest_fen)
    audit_record(
        actor=actor,
        action="pledge.enforce_complete",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "amount_due": fen_to_str(enforcement.amount_due_fen),
            "units_sold": enforcement.units_sold,
            "proceeds": fen_to_str(enforcement.proceeds_fen),
            "seller_fees": fen_to_str(enforcement.fees_fen),
            "paid_to_lender": fen_to_str(enforcement.paid_to_lender_fen),
            "surplus_to_borrower": fen_to_str(enforcement.surplus_fen),
            "shortfall": fen_to_str(enforcement.shortfall_fen),
            "unsold_still_pledged": enforcement.units_unsold,
            "unsold_released": unsold if enforcement.units_released else 0,
            "kept_still_pledged": kept_units if still_pledged else 0,
            "kept_released": kept_units if enforcement.units_released else 0,
            "status": loan.status,
        },
    )


@service
def pledge_sales_complete(*, actor: Actor | None = None) -> int:
    """Complete sales on enforcement whose order has ended with every trade settled; return how many.

    Settlement completes the ones whose last trades it settles; this catches orders that ended later
    (cancelled at a session close after their trades settled, or that never traded). Safe to run twice.
    """
    actor = actor or Actor.system("pledge-sales")
    unsettled = Trade.objects.filter(settlement_batch__isnull=True).values("sell_order_id")  # type: ignore[misc]  # TradeManager annotates it; django-stubs see only fields
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
