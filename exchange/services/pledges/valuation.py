"""The daily valuation: marking pledges to market, margin calls, past-maturity flags."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from accounts.actors import Actor
from core import clock
from core.money import fen_to_str
from exchange.faults import crash_point
from exchange.locks import lock_pledge_loans
from exchange.models import (
    MarginCall,
    PledgeLoan,
    PledgeStatus,
    PledgeValuation,
)
from exchange.selectors.pledges import Price, collateral_price
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.pledges.common import (
    VALUATION_FIELDS,
    addresses,
    margin_call_notices,
    mark,
    maturity_notices,
    require_units,
)

logger = logging.getLogger("greenledger.pledges")


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
        PledgeLoan.objects.filter(status=PledgeStatus.REGISTERED, asset__isnull=False).select_related(
            "asset", "borrower", "lender", "margin_call"
        )
    )
    valued_today = set(PledgeValuation.objects.filter(loan__in=loans, day=day).values_list("loan_id", flat=True))
    prices: dict[int, Price | None] = {}
    valuations: list[PledgeValuation] = []
    unpriced: list[int] = []
    for loan in loans:
        if loan.pk in valued_today:
            continue
        asset = require_units(loan, "value")  # the query takes pledges of issued units only
        if asset.pk not in prices:
            prices[asset.pk] = collateral_price(asset, day)
        price = prices[asset.pk]
        if price is None:
            unpriced.append(loan.pk)
            continue
        mark(loan, price, day)
        valuations.append(
            PledgeValuation(
                loan=loan,
                day=day,
                price_fen=price.fen,
                price_day=price.day,
                price_source=price.source,
                quantity=loan.quantity,
                value_fen=price.fen * loan.quantity,  # the units; the LTV counts the cash held as well
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
            margin_call_notices(loan, call, valuation)
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
                    "notify": addresses(loan),
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
            maturity_notices(loan, day)
            audit_record(
                actor=actor,
                action="pledge.past_maturity",
                obj=loan,
                payload={"pledge": loan.pk, "reference": loan.registration_reference, "maturity": loan.maturity_date},
            )
    PledgeLoan.objects.bulk_update([v.loan for v in valuations], [*VALUATION_FIELDS, "margin_call", "past_maturity_on"])
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
