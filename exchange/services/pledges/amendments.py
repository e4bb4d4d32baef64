"""Amendments of a registered pledge (top-up, partial release, extension), registered like the pledge itself.

A change to a registered pledge changes a registered right, so it is registered the same way (Civil Code
arts. 443-445; the registry's registration practice): the borrower applies (``pledge_amendment_request``),
the lender confirms the same terms (``pledge_amendment_confirm`` with the amendment's ``terms_digest``), and
the registry registers it (``pledge_amendment_register``; above the four-eyes threshold a second registry
user approves, ``exchange.services.approvals``). Nothing changes until registration; then, in that one
transaction, the units are frozen (top-up) or released (partial release, the latest collateral first) or
the maturity moves (extension), the loan's value and LTV are updated, and the amendment gets its number
``<registration number>-A<n>``, shown on the registration certificate. Each step's audit event reaches
both parties as a participant event (``exchange.events``): ``pledge.amendment_requested``,
``pledge.amendment_confirmed``, ``pledge.amendment_rejected`` and, registered, ``pledge.amended``.

Key invariant: at most one amendment of a pledge is open (requested or applied) at a time (a partial unique
constraint), and every amendment step locks the loan row first, like every other pledge step, so an
amendment racing an enforcement or a margin call has one winner.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import translatable as _
from core.limits import is_quantity
from core.money import fen_to_str
from exchange.locks import lock_row
from exchange.models import (
    OPEN_AMENDMENT,
    AmendmentKind,
    AmendmentStatus,
    CollateralKind,
    PledgeAmendment,
    PledgeLoan,
    PledgeStatus,
)
from exchange.selectors.pledges import Price, collateral_price
from exchange.services.audit import audit_record, service
from exchange.services.four_eyes import four_eyes_check
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import holds_release
from exchange.services.pledges.common import (
    VALUATION_FIELDS,
    check_available,
    check_ltv_limit,
    collateral_add,
    latest_collateral,
    locked_loan,
    margin_call_met,
    margin_call_met_audit,
    mark,
    ranges_freed,
    ranges_of,
    require_party,
    require_units,
)
from exchange.services.pledges.errors import (
    AmendmentOpen,
    InvalidPledgeTerms,
    InvalidPledgeTransition,
    MarginCallOpen,
    TermsMismatch,
)


def amendment_digest_of(amendment: PledgeAmendment) -> str:
    """SHA-256 of what both parties apply for: the pledge (and its terms digest), the kind and the change."""
    terms = {
        "pledge": amendment.loan_id,
        "pledge_terms_digest": amendment.loan.terms_digest,
        "amendment": amendment.pk,
        "kind": amendment.kind,
        "quantity": amendment.quantity,
        "serials": amendment.serials,
        "maturity": amendment.maturity_date.isoformat() if amendment.maturity_date else None,
    }
    return hashlib.sha256(json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _registered(loan: PledgeLoan, action: str) -> None:
    if loan.status != PledgeStatus.REGISTERED:
        raise InvalidPledgeTransition(
            _("Only a registered pledge is amended."),
            details={"pledge": loan.pk, "action": action, "from": loan.status},
        )


def _amendment_payload(amendment: PledgeAmendment) -> dict[str, Any]:
    return {
        "pledge": amendment.loan_id,
        "amendment": amendment.pk,
        "kind": amendment.kind,
        "quantity": amendment.quantity,
        "serials": amendment.serials,
        "maturity": amendment.maturity_date,
        "terms_digest": amendment.terms_digest,
    }


def _locked(amendment: PledgeAmendment) -> tuple[PledgeLoan, PledgeAmendment]:
    """The loan row first, then the amendment's (the lock order of every pledge step)."""
    loan = locked_loan(amendment.loan)
    locked = lock_row(PledgeAmendment.objects.filter(pk=amendment.pk))
    assert locked is not None  # amendments are never deleted
    locked.loan = loan
    return loan, locked


def _require_status(amendment: PledgeAmendment, allowed: tuple[str, ...], action: str) -> None:
    if amendment.status not in allowed:
        raise InvalidPledgeTransition(
            _("The amendment is not in a state that allows this."),
            details={
                "pledge": amendment.loan_id,
                "amendment": amendment.pk,
                "action": action,
                "from": amendment.status,
            },
        )


@service
@idempotent_service("pledge_amendment_request")
def pledge_amendment_request(
    *,
    actor: Actor,
    loan: PledgeLoan,
    kind: str,
    quantity: int = 0,
    serials: tuple[int, int] | None = None,
    maturity_date: date | None = None,
    idempotency_key: str | None = None,
) -> PledgeAmendment:
    """The borrower applies to amend a registered pledge: ``top_up`` (``quantity`` more units, optionally the
    range ``serials``), ``partial_release`` (``quantity`` units out of the pledge) or ``extension`` (a later
    ``maturity_date``). Nothing changes until the registry registers it.

    Refused while another amendment of the pledge is open (``pledge_amendment_open``), for bad terms
    (``invalid_pledge_terms``) and, for a top-up, when the units are not available.
    ``idempotency_key`` is claimed by ``@idempotent_service``; the body never sees it.
    """
    loan = locked_loan(loan)
    require_party(actor, loan, "borrower")
    asset = require_units(loan, "amend")
    _registered(loan, "amend")
    if kind not in AmendmentKind.values:
        raise InvalidPledgeTerms(
            _("An amendment is a top-up, a partial release or an extension."), details={"kind": str(kind)[:40]}
        )
    if kind == AmendmentKind.EXTENSION:
        if maturity_date is None or maturity_date <= loan.maturity_date or quantity or serials:
            raise InvalidPledgeTerms(
                _("An extension names a maturity after the current one, and nothing else."),
                details={"maturity": loan.maturity_date.isoformat()},
            )
    else:
        if not is_quantity(quantity) or maturity_date is not None:
            raise InvalidPledgeTerms(
                _("A top-up or a partial release is a whole positive number of tonnes."),
                details={"quantity": str(quantity)},
            )
        if serials is not None:
            if kind != AmendmentKind.TOP_UP:
                raise InvalidPledgeTerms(_("Only a top-up names a serial range."), details={"serials": list(serials)})
            if serials[0] < 1 or serials[1] - serials[0] + 1 != quantity:
                raise InvalidPledgeTerms(
                    _("The range [first, last] holds exactly the quantity."), details={"serials": list(serials)}
                )
        if kind == AmendmentKind.TOP_UP:
            check_available(loan.account, asset, quantity, serials)
        elif quantity >= loan.quantity:
            raise InvalidPledgeTerms(
                _("A partial release leaves collateral; repay the loan to release it all."),
                details={"quantity": quantity, "pledged": loan.quantity},
            )
    if PledgeAmendment.objects.filter(loan=loan, status__in=OPEN_AMENDMENT).exists():
        raise AmendmentOpen(details={"pledge": loan.pk})
    amendment = PledgeAmendment.objects.create(
        loan=loan,
        kind=kind,
        quantity=quantity,
        serials=list(serials) if serials else None,
        maturity_date=maturity_date,
        requested_at=clock.now(),
    )
    amendment.terms_digest = amendment_digest_of(amendment)
    amendment.save(update_fields=["terms_digest"])
    audit_record(actor=actor, action="pledge.amendment_request", obj=amendment, payload=_amendment_payload(amendment))
    return amendment


@service
def pledge_amendment_confirm(*, actor: Actor, amendment: PledgeAmendment, terms_digest: str) -> PledgeAmendment:
    """The lender confirms the amendment's terms (``terms_digest``): the joint application goes to the
    registry. A digest of other terms is refused (``pledge_terms_mismatch``)."""
    loan, amendment = _locked(amendment)
    require_party(actor, loan, "lender")
    _require_status(amendment, (AmendmentStatus.REQUESTED,), "confirm")
    if terms_digest.strip().lower() != amendment.terms_digest:
        raise TermsMismatch(
            details={"pledge": loan.pk, "amendment": amendment.pk, "terms_digest": amendment.terms_digest}
        )
    amendment.status, amendment.confirmed_at = AmendmentStatus.APPLIED, clock.now()
    amendment.save(update_fields=["status", "confirmed_at"])
    audit_record(actor=actor, action="pledge.amendment_confirm", obj=amendment, payload=_amendment_payload(amendment))
    return amendment


@service
def pledge_amendment_register(*, actor: Actor, amendment: PledgeAmendment) -> PledgeAmendment:
    """The registry registers a jointly applied amendment; it takes effect now, in this transaction.

    Above the four-eyes threshold (the tonnes added or released; for an extension, the tonnes pledged) it
    needs a second registry user's approval (``approval_required``). Refused when the pledge is no longer
    registered (in default, enforced, released), when a partial release meets an open margin call or would
    put the LTV above its limit, and when a top-up's units are no longer available."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)
    loan, amendment = _locked(amendment)
    _require_status(amendment, (AmendmentStatus.APPLIED,), "register")
    _registered(loan, "amend")
    asset = require_units(loan, "amend")
    four_eyes_check(loan.quantity if amendment.kind == AmendmentKind.EXTENSION else amendment.quantity)
    day, now = clock.trading_day(), clock.now()
    price = collateral_price(asset, day) or Price(loan.price_fen, None, "")
    if amendment.kind == AmendmentKind.TOP_UP:
        serials = (amendment.serials[0], amendment.serials[1]) if amendment.serials else None
        collateral = collateral_add(loan, asset, amendment.quantity, serials, CollateralKind.TOP_UP, now)
        amendment.collateral, amendment.serial_ranges = collateral, collateral.serial_ranges
        loan.quantity += amendment.quantity
    elif amendment.kind == AmendmentKind.PARTIAL_RELEASE:
        if loan.margin_call_id is not None:
            raise MarginCallOpen(details={"pledge": loan.pk, "margin_call": loan.margin_call_id})
        if amendment.quantity >= loan.quantity:
            raise InvalidPledgeTerms(
                _("A partial release leaves collateral; repay the loan to release it all."),
                details={"quantity": amendment.quantity, "pledged": loan.quantity},
            )
        loan.quantity -= amendment.quantity
        check_ltv_limit(loan, price)
        releases = latest_collateral(loan, amendment.quantity)
        before = {hold.pk: ranges_of(hold) for hold, _ in releases}
        holds_release(releases)
        # the serials it freed, recorded on the amendment and in its audit event (``serial_ranges``)
        amendment.serial_ranges = sorted(
            freed for hold, _ in releases for freed in ranges_freed(before[hold.pk], ranges_of(hold))
        )
    else:
        assert amendment.maturity_date is not None  # an extension's (pledge_amendment_terms_valid)
        amendment.previous_maturity_date = loan.maturity_date
        loan.maturity_date = amendment.maturity_date
    mark(loan, price, day)
    met = margin_call_met(loan)
    loan.save(update_fields=["quantity", "maturity_date", "margin_call", *VALUATION_FIELDS])
    number = PledgeAmendment.objects.filter(loan=loan, status=AmendmentStatus.REGISTERED).count() + 1
    amendment.status, amendment.number, amendment.registered_at = AmendmentStatus.REGISTERED, number, now
    amendment.reference = f"{loan.registration_reference}-A{number:02d}"
    amendment.ltv_bp_after = loan.ltv_bp
    amendment.save(
        update_fields=[
            "status",
            "number",
            "reference",
            "registered_at",
            "collateral",
            "serial_ranges",
            "previous_maturity_date",
            "ltv_bp_after",
        ]
    )
    audit_record(
        actor=actor,
        action="pledge.amendment_register",
        obj=amendment,
        payload={
            **_amendment_payload(amendment),
            "number": amendment.number,
            "reference": amendment.reference,
            "registration": loan.registration_reference,
            "serial_ranges": amendment.serial_ranges,
            "previous_maturity": amendment.previous_maturity_date,
            "pledged": loan.quantity,
            "price": fen_to_str(price.fen),
            "collateral_value": fen_to_str(loan.collateral_value_fen),
            "ltv_bp": loan.ltv_bp,
        },
    )
    margin_call_met_audit(actor, loan, met, "amendment")
    return amendment


@service
def pledge_amendment_reject(*, actor: Actor, amendment: PledgeAmendment, reason: str = "") -> PledgeAmendment:
    """The lender turns down a requested amendment, the borrower withdraws its own, or the registry refuses
    to register an applied one. Nothing had changed, so nothing moves."""
    loan, amendment = _locked(amendment)
    _require_status(amendment, OPEN_AMENDMENT, "reject")
    if actor.participant_kind == ParticipantKind.REGISTRY and amendment.status == AmendmentStatus.APPLIED:
        actor.require_can_act()
    elif actor.owns(loan.borrower_id):
        require_party(actor, loan, "borrower")
    else:
        require_party(actor, loan, "lender")
    amendment.status, amendment.closed_at = AmendmentStatus.REJECTED, clock.now()
    amendment.reason = reason.strip()[:500]
    amendment.save(update_fields=["status", "closed_at", "reason"])
    audit_record(
        actor=actor,
        action="pledge.amendment_reject",
        obj=amendment,
        payload={**_amendment_payload(amendment), "reason": amendment.reason},
    )
    return amendment
