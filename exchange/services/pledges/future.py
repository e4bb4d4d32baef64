"""Pledges of future CCER (收益权质押): a registered project's expected issuance pledged before it exists.

The project owner applies with the project, the vintage, the tonnes and the value a tonne agreed with the
lender; the lender confirms the same terms and the registry registers it like any pledge, with nothing to
freeze yet. When the registry issues the project's reductions of that vintage, ``future_pledges_freeze``
(called once by ``exchange.services.issuance.ccer_issue`` in the issuance transaction) freezes the pledged
quantity of the new units under each such pledge, oldest first, and the pledge becomes an ordinary
registered pledge of those units. An issuance smaller than the pledges freezes what it issued.

The loan rows are locked after the issuance's balance rows: no step locks a future pledge and then a
balance (a pledge with no units has no holds), so this order can't deadlock.
"""

from __future__ import annotations

from datetime import date

from accounts.actors import Actor
from accounts.models import Participant
from core import clock
from core.errors import InvalidInput
from core.errors import translatable as _
from core.limits import is_whole
from core.money import fen_to_str
from exchange.locks import lock_pledge_loans
from exchange.models import (
    Account,
    Balance,
    CollateralKind,
    HoldKind,
    Issuance,
    PledgeCollateral,
    PledgeKind,
    PledgeLoan,
    PledgeStatus,
    PriceSource,
    Project,
)
from exchange.selectors.pledges import Price
from exchange.services.accounts import check_source
from exchange.services.audit import audit_record, service
from exchange.services.ledger import hold_place
from exchange.services.pledges.common import VALUATION_FIELDS, check_ltv_limit, mark, ranges_of, terms_digest_of
from exchange.services.pledges.errors import InvalidPledgeTerms
from exchange.services.pledges.terms import DEFAULT_CURE_DAYS, check_loan_parties, check_terms

MAX_PRICE_FEN = 10**9


@service
def pledge_request_future(
    *,
    actor: Actor,
    account: Account,
    lender: Participant,
    project: Project,
    vintage: int,
    quantity: int,
    price_fen: int,
    principal_fen: int,
    annual_rate_bp: int,
    maturity_date: date,
    ltv_limit_bp: int,
    margin_call_bp: int,
    liquidation_bp: int,
    start_date: date | None = None,
    cure_period_days: int = DEFAULT_CURE_DAYS,
    day_count: str = "act/360",
) -> PledgeLoan:
    """The project owner applies to pledge ``quantity`` t of the project's expected ``vintage`` issuance,
    valued at ``price_fen`` a tonne as agreed with the lender (the LTV limit applies at that value)."""
    check_source(actor, account)
    today = clock.trading_day()
    start_date = start_date or today
    check_terms(
        quantity=quantity,
        principal_fen=principal_fen,
        annual_rate_bp=annual_rate_bp,
        start_date=start_date,
        maturity_date=maturity_date,
        ltv_limit_bp=ltv_limit_bp,
        margin_call_bp=margin_call_bp,
        liquidation_bp=liquidation_bp,
        cure_period_days=cure_period_days,
        serials=None,
    )
    if project.owner_id != account.participant_id:
        raise InvalidInput(_("Only the project's owner pledges its future CCER."), details={"project": project.code})
    if not is_whole(vintage) or not 2000 <= vintage <= 2100:
        raise InvalidInput(_("The vintage is a year."), details={"vintage": str(vintage)})
    if not is_whole(price_fen) or not 0 < price_fen <= MAX_PRICE_FEN:
        raise InvalidPledgeTerms(_("The agreed value a tonne is positive."), details={"price": str(price_fen)})
    check_loan_parties(lender=lender, borrower_id=account.participant_id, maturity_date=maturity_date, today=today)
    loan = PledgeLoan(
        borrower_id=actor.member_participant_id,
        account=account,
        lender=lender,
        kind=PledgeKind.FUTURE,
        project=project,
        vintage=vintage,
        quantity=quantity,
        principal_fen=principal_fen,
        annual_rate_bp=annual_rate_bp,
        day_count=day_count,
        start_date=start_date,
        maturity_date=maturity_date,
        ltv_limit_bp=ltv_limit_bp,
        margin_call_bp=margin_call_bp,
        liquidation_bp=liquidation_bp,
        cure_period_days=cure_period_days,
        status=PledgeStatus.REQUESTED,
        requested_at=clock.now(),
    )
    price = Price(price_fen, None, PriceSource.REFERENCE)
    check_ltv_limit(loan, price)
    mark(loan, price, today)
    loan.save(force_insert=True)
    loan.terms_digest = terms_digest_of(loan)
    loan.save(update_fields=["terms_digest"])
    audit_record(
        actor=actor,
        action="pledge.request_future",
        obj=loan,
        payload={
            "pledge": loan.pk,
            "project": project.code,
            "vintage": vintage,
            "quantity": quantity,
            "price": fen_to_str(price_fen),
            "principal": fen_to_str(principal_fen),
            "ltv_bp": loan.ltv_bp,
            "terms_digest": loan.terms_digest,
        },
    )
    return loan


def future_pledges_freeze(*, actor: Actor, issuance: Issuance) -> list[PledgeLoan]:
    """Freeze the issued units under the registered pledges of this project's future CCER of this vintage,
    oldest pledge first, in the issuance's transaction; each becomes an ordinary pledge of those units."""
    loans = lock_pledge_loans(
        PledgeLoan.objects.filter(
            kind=PledgeKind.FUTURE,
            status=PledgeStatus.REGISTERED,
            project_id=issuance.project_id,
            vintage=issuance.asset.vintage,
        ).select_related("account", "borrower", "lender")
    )
    frozen: list[PledgeLoan] = []
    now, day = clock.now(), clock.trading_day()
    for loan in loans:
        row = Balance.objects.filter(account=loan.account, asset=issuance.asset).values_list("total", "held").first()
        available = row[0] - row[1] if row else 0
        quantity = min(loan.quantity, available)
        if quantity <= 0:
            continue
        hold = hold_place(
            account=loan.account,
            asset=issuance.asset,
            quantity=quantity,
            kind=HoldKind.PLEDGE,
            reference=f"pledge:{loan.pk}",
        )
        ranges = ranges_of(hold)
        PledgeCollateral.objects.create(
            loan=loan, hold=hold, kind=CollateralKind.ISSUED, quantity=quantity, serial_ranges=ranges, created_at=now
        )
        pledged = loan.quantity
        loan.kind, loan.asset, loan.quantity = PledgeKind.UNITS, issuance.asset, quantity
        mark(loan, Price(loan.price_fen, None, PriceSource.REFERENCE), day)
        loan.save(update_fields=["kind", "asset", "quantity", *VALUATION_FIELDS])
        audit_record(
            actor=actor,
            action="pledge.future_frozen",
            obj=loan,
            payload={
                "pledge": loan.pk,
                "reference": loan.registration_reference,
                "issuance": issuance.pk,
                "asset": issuance.asset.code,
                "pledged": pledged,
                "frozen": quantity,
                "hold": hold.pk,
                "serials": ranges,
            },
        )
        frozen.append(loan)
    return frozen
