"""Release of a repaid pledge."""

from __future__ import annotations

from accounts.actors import Actor
from core import clock
from core.money import fen_to_str
from exchange.models import (
    PledgeLoan,
)
from exchange.services.audit import audit_record, service
from exchange.services.ledger import (
    holds_release,
)
from exchange.services.pledges.common import (
    active_collateral,
    cash_collateral,
    locked_loan,
    require_party,
    transition,
)
from exchange.services.pledges.terms import (
    loan_interest_fen,
)


@service
def pledge_release(*, actor: Actor, loan: PledgeLoan, repayment_reference: str = "") -> PledgeLoan:
    """The lender records that the loan was repaid and releases the pledge: the units are available again.

    The repayment itself is paid outside the exchange's cash accounts; the amount due on the day
    (principal + interest) is recorded with the lender's payment reference.
    """
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    loan.status = transition(loan, "release")
    day = clock.trading_day()
    collateral = active_collateral(loan)
    cash = cash_collateral(loan)  # cash held as substitute collateral is released with the units
    released = holds_release([(c.hold, None) for c in collateral])
    cash_released = sum(holds_release([(c.hold, None) for c in cash]).values()) if cash else 0
    loan.cash_collateral_fen = 0
    loan.interest_fen = loan_interest_fen(loan, day)
    loan.closed_on = day
    loan.margin_call = None
    loan.save(update_fields=["status", "interest_fen", "closed_on", "margin_call", "cash_collateral_fen"])
    audit_record(
        actor=actor,
        action="pledge.release",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "released": sum(released.values()),
            "cash_released": fen_to_str(cash_released),
            "interest": fen_to_str(loan.interest_fen),
            "amount_due": fen_to_str(loan.principal_fen + loan.interest_fen),
            "repayment_reference": repayment_reference.strip()[:100],
        },
    )
    return loan
