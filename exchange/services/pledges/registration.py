"""Request, registration, rejection, withdrawal and top-up of a pledge."""

from __future__ import annotations

from datetime import date

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core import clock
from core.limits import is_quantity
from core.money import fen_to_str
from exchange.errors import (
    AccountNotFound,
)
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    CollateralKind,
    HoldKind,
    PledgeCollateral,
    PledgeLoan,
    PledgeStatus,
)
from exchange.selectors.pledges import Price, collateral_price
from exchange.services.accounts import check_source
from exchange.services.audit import audit_record, service
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import (
    hold_place,
)
from exchange.services.pledges.common import (
    VALUATION_FIELDS,
    check_available,
    check_ltv_limit,
    locked_loan,
    mark,
    price_or_refuse,
    ranges_of,
    require_party,
    terms_payload,
    transition,
)
from exchange.services.pledges.errors import (
    AssetNotPledgeable,
    InvalidLender,
    InvalidPledgeTerms,
)
from exchange.services.pledges.terms import (
    DEFAULT_CURE_DAYS,
    check_terms,
)


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
    price = price_or_refuse(asset, today)
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
    check_ltv_limit(loan, price)
    check_available(account, asset, quantity, serials)
    mark(loan, price, today)
    loan.save(force_insert=True)
    audit_record(
        actor=actor,
        action="pledge.request",
        obj=loan,
        payload={
            **terms_payload(loan),
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
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    target = transition(loan, "register")
    if lender_account is None:
        lender_account = (
            Account.objects.filter(participant_id=loan.lender_id, kind=AccountKind.HOLDING).order_by("pk").first()
        )
        if lender_account is None:
            raise AccountNotFound("The lender has no holding account to receive enforced units or proceeds.")
    elif lender_account.kind != AccountKind.HOLDING or lender_account.participant_id != loan.lender_id:
        raise AccountNotFound(details={"account": lender_account.number})
    day, now = clock.trading_day(), clock.now()
    price = price_or_refuse(loan.asset, day)
    check_ltv_limit(loan, price)
    hold = hold_place(
        account=loan.account,
        asset=loan.asset,
        quantity=loan.quantity,
        kind=HoldKind.PLEDGE,
        reference=f"pledge:{loan.pk}",
        serials=tuple(loan.serials) if loan.serials else None,
    )
    ranges = ranges_of(hold)
    PledgeCollateral.objects.create(
        loan=loan, hold=hold, kind=CollateralKind.INITIAL, quantity=loan.quantity, serial_ranges=ranges, created_at=now
    )
    loan.status = target
    loan.registration_reference = f"CNPL-{day.year}-{loan.pk:06d}"
    loan.registered_at = now
    loan.lender_account = lender_account
    mark(loan, price, day)
    loan.save(update_fields=["status", "registration_reference", "registered_at", "lender_account", *VALUATION_FIELDS])
    audit_record(
        actor=actor,
        action="pledge.register",
        obj=loan,
        payload={
            **terms_payload(loan),
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
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    loan.status = transition(loan, "reject")
    loan.closed_on = clock.trading_day()
    loan.note = reason.strip()[:500]
    loan.save(update_fields=["status", "closed_on", "note"])
    audit_record(actor=actor, action="pledge.reject", obj=loan, payload={"pledge": loan.pk, "reason": loan.note})
    return loan


@service
def pledge_withdraw(*, actor: Actor, loan: PledgeLoan) -> PledgeLoan:
    """The borrower takes its request back before the lender has registered it."""
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    loan.status = transition(loan, "withdraw")
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
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    if not is_quantity(quantity):
        raise InvalidPledgeTerms("A top-up is a whole positive number of tonnes.", details={"quantity": str(quantity)})
    if serials is not None and (serials[0] < 1 or serials[1] - serials[0] + 1 != quantity):
        raise InvalidPledgeTerms("The range [first, last] holds exactly the quantity.", details={"serials": serials})
    transition(loan, "top_up")
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
        serial_ranges=ranges_of(hold),
        created_at=now,
    )
    loan.quantity += quantity
    mark(loan, collateral_price(loan.asset, day) or Price(loan.price_fen, None, ""), day)
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
