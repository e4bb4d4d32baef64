"""Default and enforcement of a pledge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

from accounts.actors import Actor
from core import clock
from core.errors import InvalidInput
from core.limits import is_whole
from core.money import fen_to_str
from exchange.locks import lock_book, lock_enforcements, lock_hold
from exchange.models import (
    DefaultReason,
    EnforcementMethod,
    EnforcementStatus,
    HoldKind,
    HoldStatus,
    OrderStatus,
    PledgeEnforcement,
    PledgeLoan,
    PledgeStatus,
    Trade,
    TransactionKind,
)
from exchange.models.notices import NoticeKind
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.ledger import (
    Leg,
    holds_consolidate,
    holds_release,
    journal_open,
    ledger_post,
)
from exchange.services.pledges.common import (
    active_collateral,
    enforcement_notice,
    lender_account_of,
    locked_loan,
    notice,
    require_party,
    transition,
)
from exchange.services.pledges.errors import (
    DefaultNotDue,
    EnforcementInProgress,
)
from exchange.services.pledges.terms import (
    bp_to_percent,
    simple_interest_fen,
)
from exchange.services.trading import cash_asset, enforcement_order_place


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
    notice(
        loan,
        f"Pledge {loan.registration_reference} declared in default on {day}",
        f"{loan.lender.name} declared pledge {loan.registration_reference} ({loan.quantity} t of {loan.asset.code}) "
        f"in default on {day}: {', '.join(grounds)}. The units stay frozen until the lender enforces.",
        kind=NoticeKind.DEFAULT,
    )
    return loan


@service
def pledge_enforce(*, actor: Actor, loan: PledgeLoan, method: str, price_fen: int | None = None) -> PledgeEnforcement:
    """The lender enforces a defaulted pledge.

    ``transfer``: exactly the pledged blocks move into the lender's account at once (one
    ``pledge_enforcement`` journal entry consuming the pledge holds). ``sale``: the pledged units are
    offered on the exchange at the limit ``price_fen`` through an ordinary sell order that takes over
    them; the loan is enforced once the sale has ended and settled (see the module docstring).
    """
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    if method not in EnforcementMethod.values:
        raise InvalidInput("method is transfer or sale.", details={"method": method})
    if loan.status == PledgeStatus.DEFAULTED and PledgeEnforcement.objects.filter(loan=loan).exists():
        raise EnforcementInProgress(details={"pledge": loan.pk})
    target = transition(loan, "enforce")
    day, now = clock.trading_day(), clock.now()
    interest = simple_interest_fen(loan.principal_fen, loan.annual_rate_bp, loan.start_date, day)
    due = loan.principal_fen + interest
    collateral = active_collateral(loan)
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
            [Leg(loan.asset, loan.account, lender_account_of(loan), c.hold.remaining, hold=c.hold) for c in collateral],
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
                "lender_account": lender_account_of(loan).number,
                "serials": [list(r) for leg_ranges in posted.ranges for r in leg_ranges],
                "amount_due": fen_to_str(due),
                "entry_digest": posted.digest,
            },
        )
        enforcement_notice(loan, method, due)
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
    enforcement_notice(loan, method, due)
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
    """The sale has ended and settled: unsold units to the lender if it is owed, else back; loan enforced."""
    loan = locked_loan(enforcement.loan)
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
            [Leg(loan.asset, loan.account, lender_account_of(loan), unsold, hold=hold)],
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
