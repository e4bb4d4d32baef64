"""Request, registration, rejection and withdrawal of a pledge (a top-up is an amendment: ``amendments``)."""

from __future__ import annotations

from datetime import date, datetime

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core import clock
from core.errors import InvalidInput
from core.errors import translatable as _
from core.money import fen_to_str
from exchange.errors import (
    AccountNotFound,
)
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    CollateralKind,
    DayCount,
    HoldKind,
    PledgeCollateral,
    PledgeKind,
    PledgeLoan,
    PledgeStatus,
)
from exchange.services.accounts import check_source
from exchange.services.audit import audit_record, service
from exchange.services.four_eyes import four_eyes_check
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import (
    hold_place,
)
from exchange.services.pledges.common import (
    VALUATION_FIELDS,
    check_available,
    check_ltv_limit,
    lender_account_of,
    locked_loan,
    mark,
    price_or_refuse,
    ranges_of,
    require_party,
    require_units,
    terms_digest_of,
    terms_payload,
    transition,
)
from exchange.services.pledges.errors import (
    AssetNotPledgeable,
    InvalidPledgeTerms,
    InvalidPledgeTransition,
    TermsMismatch,
)
from exchange.services.pledges.terms import (
    DEFAULT_CURE_DAYS,
    check_loan_parties,
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
    day_count: str = DayCount.ACT_360,
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
    if day_count not in DayCount.values:
        raise InvalidPledgeTerms(
            _("The day count is act/360 or act/365."), details={"day_count": _("act/360 or act/365.")}
        )
    check_loan_parties(lender=lender, borrower_id=account.participant_id, maturity_date=maturity_date, today=today)
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
        "day_count": day_count,
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
        day_count=day_count,
        status=PledgeStatus.REQUESTED,
        requested_at=clock.now(),
    )
    check_ltv_limit(loan, price)
    check_available(account, asset, quantity, serials)
    mark(loan, price, today)
    loan.save(force_insert=True)
    loan.terms_digest = terms_digest_of(loan)
    loan.save(update_fields=["terms_digest"])
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
def pledge_confirm(
    *, actor: Actor, loan: PledgeLoan, terms_digest: str, lender_account: Account | None = None
) -> PledgeLoan:
    """The lender confirms the same terms the borrower applied with (``terms_digest``, shown on the pledge):
    the joint application goes to the registry, which registers it. Nothing is frozen yet.

    ``lender_account`` receives units taken on enforcement and sale proceeds (default: its first holding
    account). A digest of other terms is refused (``pledge_terms_mismatch``)."""
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    target = transition(loan, "confirm")
    if terms_digest.strip().lower() != loan.terms_digest:
        raise TermsMismatch(details={"pledge": loan.pk, "terms_digest": loan.terms_digest})
    if lender_account is None:
        lender_account = (
            Account.objects.filter(participant_id=loan.lender_id, kind=AccountKind.HOLDING).order_by("pk").first()
        )
        if lender_account is None:
            raise AccountNotFound(_("The lender has no holding account to receive enforced units or proceeds."))
    elif lender_account.kind != AccountKind.HOLDING or lender_account.participant_id != loan.lender_id:
        raise AccountNotFound(details={"account": lender_account.number})
    loan.status, loan.lender_account, loan.lender_confirmed_at = target, lender_account, clock.now()
    loan.save(update_fields=["status", "lender_account", "lender_confirmed_at"])
    audit_record(
        actor=actor,
        action="pledge.confirm",
        obj=loan,
        payload={
            **terms_payload(loan),
            "terms_digest": loan.terms_digest,
            "lender_account": lender_account.number,
        },
    )
    return loan


@service
def pledge_register(*, actor: Actor, loan: PledgeLoan) -> PledgeLoan:
    """The registry registers a joint application (Civil Code art. 443: a pledge of these rights is created
    on registration): the exact serial blocks are frozen by a pledge hold and the pledge gets its
    registration number. Above the four-eyes threshold it needs a second registry user's approval
    (``approval_required``; ``exchange.services.approvals`` files and carries out the request). Refused if
    the borrower no longer has the units available or the LTV limit is exceeded at today's price."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)
    loan = locked_loan(loan)
    target = transition(loan, "register")
    four_eyes_check(loan.quantity)
    day, now = clock.trading_day(), clock.now()
    if loan.kind == PledgeKind.FUTURE:
        return _register_future(actor, loan, target, day, now)
    asset = require_units(loan, "register")
    price = price_or_refuse(asset, day)
    check_ltv_limit(loan, price)
    hold = hold_place(
        account=loan.account,
        asset=asset,
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
    mark(loan, price, day)
    loan.save(update_fields=["status", "registration_reference", "registered_at", *VALUATION_FIELDS])
    lender_account = lender_account_of(loan)
    audit_record(
        actor=actor,
        action="pledge.register",
        obj=loan,
        payload={
            **terms_payload(loan),
            "terms_digest": loan.terms_digest,
            "borrower_name": loan.borrower.name,
            "lender_name": loan.lender.name,
            "lender_account": lender_account.number,
            "hold": hold.pk,
            "serials": ranges,
            "price": fen_to_str(price.fen),
            "ltv_bp": loan.ltv_bp,
        },
    )
    return loan


def _register_future(actor: Actor, loan: PledgeLoan, target: str, day: date, now: datetime) -> PledgeLoan:
    """Registration of a pledge of future CCER: nothing exists to freeze yet; the issuance freezes it."""
    loan.status, loan.registration_reference, loan.registered_at = (
        target,
        f"CNPL-{day.year}-{loan.pk:06d}",
        now,
    )
    loan.save(update_fields=["status", "registration_reference", "registered_at"])
    audit_record(
        actor=actor,
        action="pledge.register",
        obj=loan,
        payload={
            **terms_payload(loan),
            "terms_digest": loan.terms_digest,
            "kind": loan.kind,
            "borrower_name": loan.borrower.name,
            "lender_name": loan.lender.name,
            "lender_account": lender_account_of(loan).number,
            "serials": [],
            "price": fen_to_str(loan.price_fen),
            "ltv_bp": loan.ltv_bp,
        },
    )
    return loan


@service
def pledge_external_reference_record(*, actor: Actor, loan: PledgeLoan, reference: str) -> PledgeLoan:
    """The lender records the pledge's registration number in the movable-property financing registration
    system (动产融资统一登记公示系统) where it also registered it."""
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    reference = reference.strip()
    if not 1 <= len(reference) <= 64:
        raise InvalidInput(_("The reference has 1 to 64 characters."), details={"reference": reference[:80]})
    if loan.registration_reference is None:
        raise InvalidPledgeTransition(
            _("Only a registered pledge has an external registration."),
            details={"pledge": loan.pk, "from": loan.status},
        )
    previous = loan.external_registration_reference
    loan.external_registration_reference, loan.external_registration_recorded_at = reference, clock.now()
    loan.save(update_fields=["external_registration_reference", "external_registration_recorded_at"])
    audit_record(
        actor=actor,
        action="pledge.external_reference",
        obj=loan,
        payload={"pledge": loan.pk, "reference": loan.registration_reference, "external": reference, "was": previous},
    )
    return loan


@service
def pledge_reject(*, actor: Actor, loan: PledgeLoan, reason: str = "") -> PledgeLoan:
    """The lender turns the request down, or the registry refuses to register a joint application;
    nothing was frozen, so nothing moves."""
    loan = locked_loan(loan)
    if not (actor.participant_kind == ParticipantKind.REGISTRY and loan.status == PledgeStatus.APPLIED):
        require_party(actor, loan, "lender")
    else:
        actor.require_can_act()
    loan.status = transition(loan, "reject")
    loan.closed_on = clock.trading_day()
    loan.note = reason.strip()[:500]
    loan.save(update_fields=["status", "closed_on", "note"])
    audit_record(actor=actor, action="pledge.reject", obj=loan, payload={"pledge": loan.pk, "reason": loan.note})
    return loan


@service
def pledge_withdraw(*, actor: Actor, loan: PledgeLoan) -> PledgeLoan:
    """The borrower takes its application back before the registry has registered it."""
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    loan.status = transition(loan, "withdraw")
    loan.closed_on = clock.trading_day()
    loan.save(update_fields=["status", "closed_on"])
    audit_record(actor=actor, action="pledge.withdraw", obj=loan, payload={"pledge": loan.pk})
    return loan
