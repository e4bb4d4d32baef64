"""Release for compliance: pledged units surrendered for the borrower's obligation with the lender's consent.

The borrower asks (``pledge_compliance_release_request``); nothing moves. The lender consents
(``pledge_compliance_release_decide``): in that one transaction the units leave the pledge's holds, any
substitute units of the same asset are pledged in their place (or the borrower's cash is held under the
pledge, ``substitute_cash_fen``: it counts in the collateral value and is taken first on enforcement), the
borrower's surrender for the year is made as it asked (``exchange.services.compliance.surrender_create``, as
the requesting user), and the loan's quantity, value and LTV are updated. Refused while a margin call is open,
and when the LTV after it would exceed the loan's LTV limit. This module imports the compliance services, so
the package's ``__init__`` does not re-export it (issuance, which compliance imports, hooks into the pledge
package).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from accounts.actors import Actor
from core import clock
from core.errors import InvalidInput
from core.errors import translatable as _
from core.limits import is_quantity, is_whole
from core.money import fen_to_str
from exchange.locks import lock_row, lock_rows
from exchange.models import (
    CollateralKind,
    ComplianceReleaseStatus,
    Obligation,
    PledgeComplianceRelease,
    PledgeLoan,
    PledgeStatus,
)
from exchange.selectors.pledges import Price, collateral_price
from exchange.services.audit import audit_record, service
from exchange.services.compliance import SurrenderLine, surrender_create
from exchange.services.ledger import holds_release
from exchange.services.pledges.common import (
    VALUATION_FIELDS,
    cash_collateral_add,
    check_ltv_limit,
    collateral_add,
    latest_collateral,
    locked_loan,
    mark,
    require_party,
    require_units,
)
from exchange.services.pledges.errors import (
    ComplianceReleaseNotPending,
    InvalidPledgeTerms,
    InvalidPledgeTransition,
    MarginCallOpen,
)

MAX_CASH_FEN = 10**13  # 100 billion yuan: far above any loan


@service
def pledge_compliance_release_request(
    *,
    actor: Actor,
    loan: PledgeLoan,
    quantity: int,
    year: int,
    substitute_quantity: int = 0,
    substitute_cash_fen: int = 0,
) -> PledgeComplianceRelease:
    """The borrower asks the lender to release ``quantity`` pledged units into its surrender for ``year``,
    optionally pledging ``substitute_quantity`` other units, or holding ``substitute_cash_fen`` of its cash
    under the pledge, in their place. Nothing moves yet."""
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    require_units(loan, "compliance_release")
    if loan.status != PledgeStatus.REGISTERED:
        raise InvalidPledgeTransition(
            _("Only a registered pledge releases units for compliance."),
            details={"pledge": loan.pk, "action": "compliance_release", "from": loan.status},
        )
    if not is_quantity(quantity) or quantity > loan.quantity:
        raise InvalidPledgeTerms(
            _("Release a whole number of pledged tonnes, at most the units pledged."),
            details={"quantity": str(quantity), "pledged": loan.quantity},
        )
    if not is_whole(substitute_quantity) or substitute_quantity < 0:
        raise InvalidPledgeTerms(_("A substitute is a whole number of tonnes from 0."))
    if not is_whole(substitute_cash_fen) or not 0 <= substitute_cash_fen <= MAX_CASH_FEN:
        raise InvalidPledgeTerms(
            _("Substitute cash is an amount from 0."), details={"substitute_cash": str(substitute_cash_fen)}
        )
    if not is_whole(year) or not 2000 <= year <= 2100:
        raise InvalidInput(_("The compliance year is a year."), details={"year": str(year)})
    if PledgeComplianceRelease.objects.filter(loan=loan, status=ComplianceReleaseStatus.REQUESTED).exists():
        raise ComplianceReleaseNotPending(_("A release for compliance already waits for the lender."))
    release = PledgeComplianceRelease.objects.create(
        loan=loan,
        quantity=quantity,
        year=year,
        substitute_quantity=substitute_quantity,
        substitute_cash_fen=substitute_cash_fen,
        requested_by_id=actor.member_user_id,
        requested_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="pledge.compliance_release_request",
        obj=release,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "quantity": quantity,
            "year": year,
            "substitute_quantity": substitute_quantity,
            "substitute_cash": fen_to_str(substitute_cash_fen),
        },
    )
    return release


@service
def pledge_compliance_release_decide(
    *, actor: Actor, loan: PledgeLoan, consent: bool, reason: str = ""
) -> PledgeComplianceRelease:
    """The lender consents (the units are released into the surrender, in this transaction) or refuses."""
    loan = locked_loan(loan)
    require_party(actor, loan, "lender")
    release = lock_row(PledgeComplianceRelease.objects.filter(loan=loan, status=ComplianceReleaseStatus.REQUESTED))
    if release is None:
        raise ComplianceReleaseNotPending(details={"pledge": loan.pk})
    now = clock.now()
    if not consent:
        release.status, release.decided_at, release.reason = ComplianceReleaseStatus.REFUSED, now, reason.strip()[:500]
        release.save(update_fields=["status", "decided_at", "reason"])
        audit_record(
            actor=actor,
            action="pledge.compliance_release_refuse",
            obj=release,
            payload={"pledge": loan.pk, "reason": release.reason},
        )
        return release
    if loan.status != PledgeStatus.REGISTERED:
        raise InvalidPledgeTransition(details={"pledge": loan.pk, "action": "compliance_release", "from": loan.status})
    if loan.margin_call_id is not None:
        raise MarginCallOpen(details={"pledge": loan.pk, "margin_call": loan.margin_call_id})
    asset = require_units(loan, "compliance_release")
    day = clock.trading_day()
    price = collateral_price(asset, day) or Price(loan.price_fen, None, "")
    remaining = loan.quantity - release.quantity + release.substitute_quantity
    if remaining <= 0:
        raise InvalidPledgeTerms(
            _("A release for compliance leaves collateral; repay the loan to release it all."),
            details={"quantity": release.quantity, "pledged": loan.quantity},
        )
    loan.quantity = remaining
    loan.cash_collateral_fen += release.substitute_cash_fen  # counted in the value; held below
    check_ltv_limit(loan, price)
    # The obligation's row before any balance or hold (exchange.locks); surrender_create locks it again.
    lock_rows(Obligation.objects.filter(year_id=release.year, entity_id=loan.borrower_id))
    releases = latest_collateral(loan, release.quantity)
    if release.substitute_quantity:
        collateral_add(loan, asset, release.substitute_quantity, None, CollateralKind.SUBSTITUTE, now)
    if release.substitute_cash_fen:
        loan.cash_collateral_fen -= release.substitute_cash_fen  # cash_collateral_add counts it again
        cash_collateral_add(loan, release.substitute_cash_fen, now)
    holds_release(releases)
    requester = Actor.for_user(get_user_model().objects.get(pk=release.requested_by_id))
    surrender = surrender_create(
        actor=requester,
        account=loan.account,
        year=release.year,
        items=[SurrenderLine(asset=asset, quantity=release.quantity)],
    )
    mark(loan, price, day)
    loan.save(update_fields=["quantity", "cash_collateral_fen", *VALUATION_FIELDS])
    release.status, release.decided_at, release.surrender, release.ltv_bp_after = (
        ComplianceReleaseStatus.RELEASED,
        now,
        surrender,
        loan.ltv_bp,
    )
    release.save(update_fields=["status", "decided_at", "surrender", "ltv_bp_after"])
    audit_record(
        actor=actor,
        action="pledge.compliance_release",
        obj=release,
        payload={
            "pledge": loan.pk,
            "reference": loan.registration_reference,
            "released": release.quantity,
            "substitute": release.substitute_quantity,
            "substitute_cash": fen_to_str(release.substitute_cash_fen),
            "cash_collateral": fen_to_str(loan.cash_collateral_fen),
            "year": release.year,
            "surrender": surrender.pk,
            "pledged": loan.quantity,
            "collateral_value": fen_to_str(loan.collateral_value_fen),
            "ltv_bp": loan.ltv_bp,
        },
    )
    return release
