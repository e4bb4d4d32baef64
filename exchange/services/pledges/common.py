"""What the pledge services share: the state machine, the loan lock, who may act, valuation helpers, notices."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

from django.utils.translation import gettext, gettext_lazy

from accounts.actors import Actor
from core.i18n import registry_language
from core.money import fen_to_str
from exchange.locks import lock_pledge_loans
from exchange.models import (
    Account,
    Asset,
    Balance,
    CollateralKind,
    EnforcementMethod,
    Hold,
    HoldKind,
    HoldStatus,
    MarginCall,
    PledgeCollateral,
    PledgeLoan,
    PledgeStatus,
    PledgeValuation,
    SerialBlock,
)
from exchange.models.notices import NoticeKind
from exchange.selectors.pledges import PledgeNotFound, Price, collateral_price
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.audit import audit_record
from exchange.services.cash import cash_asset
from exchange.services.ledger import (
    SerialsNotAvailable,
    hold_place,
    insufficient_available,
)
from exchange.services.notices import notice_add
from exchange.services.pledges.errors import (
    CollateralNotPriced,
    InvalidPledgeTransition,
    LtvLimitExceeded,
    NotTheBorrower,
    NotTheLender,
)
from exchange.services.pledges.terms import (
    bp_to_percent,
    ltv_bp_of,
)

# --- helpers -----------------------------------------------------------------------------------------------
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "confirm": (frozenset({PledgeStatus.REQUESTED}), PledgeStatus.APPLIED),
    "register": (frozenset({PledgeStatus.APPLIED}), PledgeStatus.REGISTERED),
    "reject": (frozenset({PledgeStatus.REQUESTED, PledgeStatus.APPLIED}), PledgeStatus.REJECTED),
    "withdraw": (frozenset({PledgeStatus.REQUESTED, PledgeStatus.APPLIED}), PledgeStatus.WITHDRAWN),
    "release": (frozenset({PledgeStatus.REGISTERED}), PledgeStatus.RELEASED),
    "default": (frozenset({PledgeStatus.REGISTERED}), PledgeStatus.DEFAULTED),
    "enforce": (frozenset({PledgeStatus.DEFAULTED}), PledgeStatus.ENFORCED),
    "court": (frozenset({PledgeStatus.REGISTERED, PledgeStatus.DEFAULTED}), PledgeStatus.ENFORCED),
}


DONE = {
    "confirm": gettext_lazy("confirmed by the lender"),
    "register": gettext_lazy("registered"),
    "reject": gettext_lazy("rejected"),
    "withdraw": gettext_lazy("withdrawn"),
    "release": gettext_lazy("released"),
    "default": gettext_lazy("declared in default"),
    "enforce": gettext_lazy("enforced"),
    "court": gettext_lazy("enforced on a court order"),
}


def transition(loan: PledgeLoan, action: str) -> str:
    """The status ``action`` leads to from the loan's status; ``invalid_pledge_transition`` if none."""
    allowed, target = TRANSITIONS[action]
    if loan.status not in allowed:
        raise InvalidPledgeTransition(
            gettext("This pledge is %(status)s, so it can't be %(done)s.")
            % {"status": str(loan.get_status_display()).lower(), "done": DONE[action]},
            details={"pledge": loan.pk, "action": action, "from": loan.status, "to": target},
        )
    return target


def locked_loan(loan: PledgeLoan) -> PledgeLoan:
    (locked,) = lock_pledge_loans(
        PledgeLoan.objects.filter(pk=loan.pk).select_related(
            "account", "lender_account", "asset", "borrower", "lender", "margin_call"
        )
    )
    return locked


def require_party(actor: Actor, loan: PledgeLoan, role: str) -> None:
    """The actor acts for the loan's lender (or borrower); a party or overseer is told why not, others 404."""
    actor.require_can_act()
    party = loan.lender_id if role == "lender" else loan.borrower_id
    if actor.owns(party):
        return
    if actor.sees_everything or actor.owns(loan.borrower_id) or actor.owns(loan.lender_id):
        raise (NotTheLender if role == "lender" else NotTheBorrower)(details={"pledge": loan.pk})
    raise PledgeNotFound(details={"pledge": loan.pk})


def lender_account_of(loan: PledgeLoan) -> Account:
    """Where enforced units and sale proceeds go (set when the pledge was registered)."""
    if loan.lender_account is None:
        raise RuntimeError(f"pledge {loan.pk} is not registered: it has no lender account")
    return loan.lender_account


def price_or_refuse(asset: Asset, day: date) -> Price:
    price = collateral_price(asset, day)
    if price is None:
        raise CollateralNotPriced(details={"asset": asset.code})
    return price


def check_ltv_limit(loan: PledgeLoan, price: Price) -> int:
    value = price.fen * loan.quantity + loan.cash_collateral_fen
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


def mark(loan: PledgeLoan, price: Price, day: date) -> None:
    """Record the latest valuation on the loan (the loan book's LTV)."""
    loan.price_fen = price.fen
    loan.collateral_value_fen = price.fen * loan.quantity + loan.cash_collateral_fen  # units, and cash held
    loan.ltv_bp = ltv_bp_of(loan.principal_fen, loan.collateral_value_fen)
    loan.valued_on = day


VALUATION_FIELDS = ["price_fen", "collateral_value_fen", "ltv_bp", "valued_on"]


def margin_call_met(loan: PledgeLoan) -> MarginCall | None:
    """The open margin call that the loan's LTV, just marked, is back below; it is cleared on the loan (the
    caller saves ``margin_call``). None when no call is open or the LTV still reaches its level."""
    met = loan.margin_call if loan.margin_call_id and loan.ltv_bp < loan.margin_call_bp else None
    if met is not None:
        loan.margin_call = None
    return met


def margin_call_met_audit(actor: Actor, loan: PledgeLoan, met: MarginCall | None, by: str) -> None:
    """Audit that ``met`` (from ``margin_call_met``) was met by ``by``; nothing when no call was met."""
    if met is not None:
        audit_record(
            actor=actor,
            action="pledge.margin_call_met",
            obj=met,
            payload={"pledge": loan.pk, "margin_call": met.pk, "ltv_bp": loan.ltv_bp, "by": by},
        )


def check_available(account: Account, asset: Asset, quantity: int, serials: tuple[int, int] | None) -> None:
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


def ranges_of(hold: Hold) -> list[list[int]]:
    blocks = SerialBlock.objects.filter(hold=hold).order_by("first").values_list("first", "last")
    return [[first, last] for first, last in blocks]


def active_collateral(loan: PledgeLoan) -> list[PledgeCollateral]:
    """The pledge's units still frozen (its collateral rows of units, oldest first)."""
    return list(
        PledgeCollateral.objects.filter(loan=loan, hold__status=HoldStatus.ACTIVE)
        .exclude(kind=CollateralKind.CASH)
        .select_related("hold")
        .order_by("id")
    )


def cash_collateral(loan: PledgeLoan) -> list[PledgeCollateral]:
    """The borrower's cash held under the pledge as substitute collateral (release for compliance)."""
    return list(
        PledgeCollateral.objects.filter(loan=loan, kind=CollateralKind.CASH, hold__status=HoldStatus.ACTIVE)
        .select_related("hold")
        .order_by("id")
    )


def cash_collateral_add(loan: PledgeLoan, amount_fen: int, now: datetime) -> PledgeCollateral:
    """Hold ``amount_fen`` of the borrower's available cash under the pledge (a ``pledge`` hold on the
    cash asset); it counts in the loan's collateral value."""

    hold = hold_place(
        account=loan.account,
        asset=cash_asset(),
        quantity=amount_fen,
        kind=HoldKind.PLEDGE,
        reference=f"pledge:{loan.pk}",
    )
    loan.cash_collateral_fen += amount_fen
    return PledgeCollateral.objects.create(
        loan=loan, hold=hold, kind=CollateralKind.CASH, quantity=amount_fen, serial_ranges=[], created_at=now
    )


def collateral_add(
    loan: PledgeLoan, asset: Asset, quantity: int, serials: tuple[int, int] | None, kind: str, now: datetime
) -> PledgeCollateral:
    """Freeze ``quantity`` more of the borrower's units (lowest available, or the named range) under the
    pledge: one ``pledge`` hold and its collateral row (a top-up, a substitute, a registered amendment)."""
    hold = hold_place(
        account=loan.account,
        asset=asset,
        quantity=quantity,
        kind=HoldKind.PLEDGE,
        reference=f"pledge:{loan.pk}",
        serials=serials,
    )
    return PledgeCollateral.objects.create(
        loan=loan, hold=hold, kind=kind, quantity=quantity, serial_ranges=ranges_of(hold), created_at=now
    )


def ranges_freed(before: list[list[int]], after: list[list[int]]) -> list[list[int]]:
    """The serial ranges in ``before`` and not in ``after`` (both sorted, non-overlapping [first, last]): what
    a partial release of a hold gave back."""
    freed: list[list[int]] = []
    for first, last in before:
        start = first
        for kept_first, kept_last in after:
            if kept_last < start or kept_first > last:
                continue
            if kept_first > start:
                freed.append([start, kept_first - 1])
            start = kept_last + 1
        if start <= last:
            freed.append([start, last])
    return freed


def latest_collateral(loan: PledgeLoan, quantity: int) -> list[tuple[Hold, int]]:
    """The holds (and how much of each) that release ``quantity`` pledged units, the latest collateral
    first (what was pledged last leaves first; the initial registration's blocks stay longest)."""
    left, releases = quantity, []
    for collateral in reversed(active_collateral(loan)):
        take = min(left, collateral.hold.remaining)
        if take:
            releases.append((collateral.hold, take))
            left -= take
    return releases


def terms_payload(loan: PledgeLoan) -> dict[str, Any]:
    return {
        "pledge": loan.pk,
        "reference": loan.registration_reference or "",
        "borrower": loan.borrower_id,
        "account": loan.account.number,
        "lender": loan.lender_id,
        "asset": asset_label(loan),
        "quantity": loan.quantity,
        "principal": fen_to_str(loan.principal_fen),
        "annual_rate_bp": loan.annual_rate_bp,
        "day_count": loan.day_count,
        "start": loan.start_date,
        "maturity": loan.maturity_date,
        "ltv_limit_bp": loan.ltv_limit_bp,
        "margin_call_bp": loan.margin_call_bp,
        "liquidation_bp": loan.liquidation_bp,
    }


def asset_label(loan: PledgeLoan) -> str:
    """The pledged asset's code, or for future CCER not issued yet, the project and vintage pledged."""
    if loan.asset is not None:
        return loan.asset.code
    return f"future:{loan.project.code}:{loan.vintage}" if loan.project else ""


def require_units(loan: PledgeLoan, action: str) -> Asset:
    """A pledge of future CCER has nothing frozen until issuance: steps on its units wait until then.
    Return the pledged asset."""
    if loan.asset is None:
        raise InvalidPledgeTransition(
            gettext("The pledged CCER have not been issued yet."),
            details={"pledge": loan.pk, "action": action, "from": loan.status, "kind": loan.kind},
        )
    return loan.asset


def terms_digest_of(loan: PledgeLoan) -> str:
    """SHA-256 of the terms both parties apply with (the joint application): what the borrower asked for
    and the lender confirms, so neither registers terms the other did not see."""
    terms = {
        "pledge": loan.pk,
        "borrower": loan.borrower_id,
        "account": loan.account.number,
        "lender": loan.lender_id,
        "asset": asset_label(loan),
        "quantity": loan.quantity,
        "serials": loan.serials,
        "principal_fen": loan.principal_fen,
        "annual_rate_bp": loan.annual_rate_bp,
        "day_count": loan.day_count,
        "start": loan.start_date.isoformat(),
        "maturity": loan.maturity_date.isoformat(),
        "ltv_limit_bp": loan.ltv_limit_bp,
        "margin_call_bp": loan.margin_call_bp,
        "liquidation_bp": loan.liquidation_bp,
        "cure_period_days": loan.cure_period_days,
    }
    return hashlib.sha256(json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- notices -----------------------------------------------------------------------------------------------
def addresses(loan: PledgeLoan) -> list[str]:
    return [p.email for p in (loan.borrower, loan.lender) if p.email]


def notice(loan: PledgeLoan, subject: str, body: str, *, kind: str, obj: tuple[str, Any] | None = None) -> None:
    """Queue one notice to each party (borrower and lender) that has a notice address, in this transaction
    (exchange.services.notices sends it and records its delivery)."""
    notice_add(
        recipients=(loan.borrower, loan.lender), kind=kind, subject=subject, body=body, obj=obj or ("pledge", loan.pk)
    )


def _method_label(method: str) -> str:
    return str(EnforcementMethod(method).label) if method in EnforcementMethod.values else method


@registry_language()
def enforcement_notice(loan: PledgeLoan, method: str, due_fen: int) -> None:
    notice(
        loan,
        gettext("Pledge %(reference)s is being enforced (%(method)s)")
        % {"reference": loan.registration_reference, "method": _method_label(method)},
        gettext(
            "%(lender)s enforces pledge %(reference)s (%(quantity)s t of %(asset)s) by %(method)s; "
            "amount due %(due)s yuan."
        )
        % {
            "lender": loan.lender.name,
            "reference": loan.registration_reference,
            "quantity": loan.quantity,
            "asset": asset_label(loan),
            "method": _method_label(method),
            "due": fen_to_str(due_fen),
        },
        kind=NoticeKind.ENFORCEMENT,
    )


@registry_language()
def margin_call_notices(loan: PledgeLoan, call: MarginCall, valuation: PledgeValuation) -> None:
    terms = {
        "reference": loan.registration_reference,
        "quantity": loan.quantity,
        "asset": asset_label(loan),
        "borrower": loan.borrower.name,
        "lender": loan.lender.name,
        "day": valuation.day,
        "price": fen_to_str(valuation.price_fen),
        "value": fen_to_str(loan.collateral_value_fen),
        "principal": fen_to_str(loan.principal_fen),
        "ltv": bp_to_percent(call.ltv_bp),
        "level": bp_to_percent(call.level_bp),
        "liquidation": bp_to_percent(loan.liquidation_bp),
        "cure_by": call.cure_by,
    }
    subject = gettext("Margin call on pledge %(reference)s: LTV %(ltv)s%% (call level %(level)s%%)") % terms
    body = "\n".join(
        [
            gettext("Pledge %(reference)s: %(quantity)s t of %(asset)s pledged by %(borrower)s to %(lender)s.") % terms,
            gettext("Valued on %(day)s at %(price)s yuan/t: %(value)s yuan against a principal of %(principal)s yuan.")
            % terms,
            gettext(
                "Loan to value %(ltv)s%% has reached the margin-call level %(level)s%% "
                "(liquidation level %(liquidation)s%%)."
            )
            % terms,
            gettext("Top up the collateral or repay by %(cure_by)s; after that day the lender may declare default.")
            % terms,
        ]
    )
    notice(loan, subject, body, kind=NoticeKind.MARGIN_CALL, obj=("margin_call", call.pk))


@registry_language()
def maturity_notices(loan: PledgeLoan, day: date) -> None:
    terms = {
        "reference": loan.registration_reference,
        "maturity": loan.maturity_date,
        "quantity": loan.quantity,
        "asset": asset_label(loan),
        "principal": fen_to_str(loan.principal_fen),
        "day": day,
    }
    subject = gettext("Pledge %(reference)s is past its maturity (%(maturity)s)") % terms
    body = (
        gettext(
            "Pledge %(reference)s (%(quantity)s t of %(asset)s, principal %(principal)s yuan) matured on %(maturity)s "
            "and was still registered on %(day)s. The lender may declare default."
        )
        % terms
    )
    notice(loan, subject, body, kind=NoticeKind.PAST_MATURITY)


# --- the valuation band for enforcement by agreement ---------------------------------------------------------
def valuation_band_bp(asset: Asset, day: date) -> int:
    """The band (basis points) around the reference price within which an agreed valuation must lie: the
    asset's market rulebook in effect on ``day`` (``rulebook_not_found`` where the asset has none)."""
    return rulebook_for(asset, day).pledge_valuation_band_bp
