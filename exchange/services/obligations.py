"""The compliance cycle's years, covered entities and verified emissions (履约: who is covered, what they emitted).

- A compliance year holds the year's own figures (deadline, shares, the penalty market, the date from which
  missing emissions may be determined); the rules that vary by plan live in ``exchange.models.compliance_rules``.
- An entity's obligation is its latest verified-emission version; a correction is the next version.
- An entity with no verified emissions after the year's ``emissions_due`` date gets a figure the authority
  determines conservatively (按保守性原则), recorded as a version flagged ``conservative``.

The refusals of the whole cycle are defined here, once; ``exchange.services.allocation`` and
``exchange.services.compliance`` (surrender, assessment) raise them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core.errors import InvalidInput, NotFound
from core.errors import translatable as _
from core.limits import MAX_QUANTITY, is_quantity
from exchange.errors import (
    DuplicateObject,
    InsufficientAvailable,
    InvalidState,
    RuleViolation,
)
from exchange.locks import lock_row, lock_rows
from exchange.models import (
    Asset,
    ComplianceYear,
    Obligation,
    ObligationStatus,
    VerifiedEmission,
)
from exchange.models.compliance import BASIS_POINTS, PENALTY_MAX_MULTIPLE, PENALTY_MIN_MULTIPLE
from exchange.selectors.compliance import figures_of
from exchange.selectors.compliance_rules import penalty_price, penalty_window  # noqa: F401  (re-exported)
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.idempotency import idempotent_service
from exchange.services.issuance import cea_asset_code, cea_vintage_create, main_account

DEFAULT_PREALLOCATION_BP = 7000
DEFAULT_CCER_LIMIT_BP = 500
DEFAULT_MARKET = "CN-ETS"


# --- refusals --------------------------------------------------------------------------------------------
class ComplianceYearNotFound(NotFound):
    code = "compliance_year_not_found"
    default_message = _("No such compliance year.")


class ObligationNotFound(NotFound):
    code = "obligation_not_found"
    default_message = _("No such obligation, or not yours.")


class NotComplianceEntity(RuleViolation):
    code = "not_a_compliance_entity"
    default_message = _("Only compliance entities are covered.")


class ComplianceYearClosed(InvalidState):
    code = "compliance_year_closed"
    default_message = _("The compliance year has been assessed; nothing more is recorded for it.")


class DeadlineNotReached(InvalidState):
    code = "deadline_not_reached"
    default_message = _("The year's surrender deadline has not passed yet.")


class EmissionsNotVerified(InvalidState):
    code = "emissions_not_verified"
    default_message = _(
        "The entity's emissions for the year are not verified yet, so there is nothing to surrender for."
    )


class VintageAfterYear(RuleViolation):
    code = "vintage_after_compliance_year"
    default_message = _("Only allowances of the compliance year's vintage or earlier can be surrendered for it.")


class CcerEtsCovered(RuleViolation):
    code = "ccer_ets_covered"
    default_message = _("CCER from projects covered by the ETS can't be surrendered.")


class CcerLimitExceeded(RuleViolation):
    code = "ccer_limit_exceeded"
    # The share is the compliance year's ``ccer_limit_bp`` (500 bp under Order 19 art. 29; docs/compliance.md).
    default_message = _(
        "CCER may cover at most the compliance year's CCER share of the obligation, counting the year's earlier "
        "surrenders."
    )


class ExceedsRemainingObligation(RuleViolation):
    code = "exceeds_remaining_obligation"
    default_message = _("That is more than remains to surrender for the year.")


class UnitsHeld(InsufficientAvailable):
    code = "units_held"
    default_message = _("Some of those units are held (open orders, pledges): only available units can be surrendered.")


class TakebackUnavailable(InsufficientAvailable):
    code = "takeback_units_unavailable"
    default_message = _("The entity no longer holds the units to take back; the shortfall is recorded.")
    # Raised after the refusal is committed: a keyed request commits it and frees its key.
    recorded = True


class AssetNotSurrenderable(InvalidInput):
    code = "asset_not_surrenderable"
    default_message = _("Only allowances and CCER are surrendered.")


class EmissionsDueNotReached(InvalidState):
    code = "emissions_due_not_reached"
    default_message = _(
        "Emissions can be determined by the authority only after the year's date for verified emissions."
    )


class EmissionsAlreadyVerified(InvalidState):
    code = "emissions_already_verified"
    default_message = _("The entity has verified emissions for the year; there is nothing to determine.")


class DeterminationBasisMissing(InvalidInput):
    code = "determination_basis_missing"
    default_message = _("State the basis of the conservative determination (the method and the data used).")


class NotShort(InvalidState):
    code = "obligation_not_short"
    default_message = _("Only an obligation assessed short has a shortfall to deduct.")


class DeductionDecided(InvalidState):
    code = "deduction_decided"
    default_message = _("A deduction has been decided for this obligation already.")


class DeductionTooLarge(RuleViolation):
    code = "deduction_exceeds_shortfall"
    default_message = _("A deduction is at most the shortfall still unsurrendered.")


class CarryoverLimitExceeded(RuleViolation):
    code = "carryover_limit_exceeded"
    default_message = _(
        "Allowances carried over from earlier years are limited by the year's plan; this surrender is above the limit."
    )


class RuleNotFound(NotFound):
    code = "compliance_rule_not_found"
    default_message = _("No rule of this kind is in force for that year and sector.")


class AllocationInputMissing(InvalidState):
    code = "allocation_input_missing"
    default_message = _("A benchmark allocation needs the entity's output and correction factors first.")


class InvalidRule(InvalidInput):
    code = "invalid_compliance_rule"
    default_message = _("The rule's values are not valid.")


# --- rules as functions ----------------------------------------------------------------------------------
def default_deadline(year: int) -> date:
    return date(year + 1, 12, 31)


def default_emissions_due(year: int) -> date:
    """30 September of the next year: the default date after which missing emissions may be determined."""
    return date(year + 1, 9, 30)


def preallocation_quantity(emissions: int, share_bp: int) -> int:
    """floor(share x emissions): whole tonnes, never more than the share."""
    return emissions * share_bp // BASIS_POINTS


def require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)


def check_share(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= BASIS_POINTS:
        raise InvalidInput(
            gettext("%(name)s is in basis points, 0 to %(max)s.") % {"name": name, "max": BASIS_POINTS},
            details={name: str(value)},
        )


def check_tonnes(name: str, value: int) -> None:
    if not is_quantity(value, minimum=0):
        raise InvalidInput(
            gettext("%(name)s is a whole number of tonnes from 0 to %(max)s.") % {"name": name, "max": MAX_QUANTITY},
            details={name: str(value)},
        )


def check_sector(sector: str) -> str:
    sector = (sector or "").strip().lower()
    if len(sector) > 32 or not all(c.isalnum() or c in "_-" for c in sector):
        raise InvalidInput(_("A sector is a short code such as power or cement."), details={"sector": sector})
    return sector


class InvalidDeadline(InvalidInput):
    code = "invalid_deadline"
    default_message = _("The deadline falls after the compliance year ends.")


def check_deadline(year: int, deadline: date) -> None:
    if deadline <= date(year, 12, 31):
        raise InvalidDeadline(details={"deadline": deadline})


def lock_year(year: int) -> ComplianceYear:
    locked = lock_row(ComplianceYear.objects.filter(pk=year))
    if locked is None:
        raise ComplianceYearNotFound(details={"year": year})
    return locked


def lock_obligation(obligation: Obligation) -> Obligation:
    (locked,) = lock_rows(Obligation.objects.filter(pk=obligation.pk))
    return locked


def require_open(obligation: Obligation) -> None:
    if obligation.status != ObligationStatus.OPEN:
        raise ComplianceYearClosed(details={"year": obligation.year_id, "status": obligation.status})


def allowance_of(year: int) -> Asset:
    asset = Asset.objects.filter(code=cea_asset_code(year)).first()
    if asset is None:
        raise InvalidState(
            gettext("%(asset)s does not exist.") % {"asset": cea_asset_code(year)},
            details={"asset": cea_asset_code(year)},
        )
    return asset


# --- years and covered entities --------------------------------------------------------------------------
@service
def compliance_year_create(
    *,
    actor: Actor,
    year: int,
    deadline: date | None = None,
    preallocation_bp: int = DEFAULT_PREALLOCATION_BP,
    ccer_limit_bp: int = DEFAULT_CCER_LIMIT_BP,
    market: str = DEFAULT_MARKET,
    emissions_due: date | None = None,
) -> ComplianceYear:
    """Open a compliance year (registry); creates the year's allowance vintage if it doesn't exist."""
    require_registry(actor)
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidInput(gettext("The compliance year is a year."), details={"year": str(year)})
    deadline = deadline or default_deadline(year)
    check_deadline(year, deadline)
    check_share("preallocation_bp", preallocation_bp)
    check_share("ccer_limit_bp", ccer_limit_bp)
    if ComplianceYear.objects.filter(pk=year).exists():
        raise DuplicateObject(
            gettext("Compliance year %(year)s exists already.") % {"year": year}, details={"year": year}
        )
    if not Asset.objects.filter(code=cea_asset_code(year)).exists():
        cea_vintage_create(actor=actor, vintage=year)
    try:
        with transaction.atomic():
            created = ComplianceYear.objects.create(
                year=year,
                deadline=deadline,
                preallocation_bp=preallocation_bp,
                ccer_limit_bp=ccer_limit_bp,
                market=market,
                emissions_due=emissions_due or default_emissions_due(year),
            )
    except IntegrityError:
        raise DuplicateObject(
            gettext("Compliance year %(year)s exists already.") % {"year": year}, details={"year": year}
        ) from None
    audit_record(
        actor=actor,
        action="compliance.year_create",
        obj=created,
        payload={
            "year": year,
            "deadline": deadline,
            "preallocation_bp": preallocation_bp,
            "ccer_limit_bp": ccer_limit_bp,
            "market": market,
            "emissions_due": created.emissions_due,
        },
    )
    return created


@service
def compliance_year_update(
    *,
    actor: Actor,
    year: ComplianceYear,
    deadline: date | None = None,
    preallocation_bp: int | None = None,
    ccer_limit_bp: int | None = None,
    emissions_due: date | None = None,
) -> ComplianceYear:
    """Change an open year's deadline, shares or emissions date (registry). Records made before keep their
    figures."""
    require_registry(actor)
    locked = lock_year(year.pk)
    if locked.is_closed:
        raise ComplianceYearClosed(details={"year": locked.year})
    changes: dict[str, Any] = {}
    if deadline is not None and deadline != locked.deadline:
        check_deadline(locked.year, deadline)
        changes["deadline"] = deadline
    if emissions_due is not None and emissions_due != locked.emissions_due:
        changes["emissions_due"] = emissions_due
    for name, value in (("preallocation_bp", preallocation_bp), ("ccer_limit_bp", ccer_limit_bp)):
        if value is not None and value != getattr(locked, name):
            check_share(name, value)
            changes[name] = value
    if not changes:
        mark_unchanged()
        return locked
    before = {name: getattr(locked, name) for name in changes}
    ComplianceYear.objects.filter(pk=locked.pk).update(**changes)
    for name, value in changes.items():
        setattr(locked, name, value)
    audit_record(
        actor=actor,
        action="compliance.year_update",
        obj=locked,
        payload={"year": locked.year, "before": before, "after": changes},
    )
    return locked


@service
def entities_cover(
    *, actor: Actor, year: ComplianceYear, entities: Sequence[Participant], sector: str = ""
) -> list[Obligation]:
    """List compliance entities as covered for the year (registry): one obligation each, once.

    ``sector`` (power, steel, cement, aluminium...) picks the allocation rule of the new obligations.
    Covering an entity again changes nothing. Its allocations go to its first holding account.
    """
    sector = check_sector(sector)
    require_registry(actor)
    if not entities:
        raise InvalidInput(gettext("Name the entities to cover."))
    locked = lock_year(year.pk)
    if locked.is_closed:
        raise ComplianceYearClosed(details={"year": locked.year})
    unique = sorted({p.pk: p for p in entities}.values(), key=lambda p: p.pk)
    for participant in unique:
        if participant.kind != ParticipantKind.COMPLIANCE_ENTITY:
            raise NotComplianceEntity(
                gettext("%(participant)s is a %(kind)s, not a compliance entity.")
                % {"participant": participant.name, "kind": participant.get_kind_display().lower()},
                details={"participant": participant.pk, "kind": participant.kind},
            )
    existing = set(Obligation.objects.filter(year=locked, entity__in=unique).values_list("entity_id", flat=True))
    created = 0
    for participant in unique:
        if participant.pk in existing:
            continue
        account = main_account(participant)
        obligation = Obligation.objects.create(year=locked, entity=participant, account=account, sector=sector)
        audit_record(
            actor=actor,
            action="compliance.cover",
            obj=obligation,
            payload={"year": locked.year, "entity": participant.pk, "account": account.number, "sector": sector},
        )
        created += 1
    if not created:
        mark_unchanged()
    return list(
        Obligation.objects.filter(year=locked, entity__in=unique).select_related("entity", "account").order_by("pk")
    )


# --- verified emissions ----------------------------------------------------------------------------------
@service
def emissions_record(
    *,
    actor: Actor,
    obligation: Obligation,
    quantity: int,
    report_reference: str = "",
    note: str = "",
) -> VerifiedEmission:
    """Record an entity's verified emissions for the year (a verifier or the registry).

    The first record is version 1; a correction is the next version and the earlier ones are kept.
    Recording the same figure and report as the latest version again changes nothing.
    """
    actor.require_can_act()
    actor.require_kind(ParticipantKind.VERIFIER, ParticipantKind.REGISTRY)
    check_tonnes("quantity", quantity)
    report_reference, note = report_reference.strip(), note.strip()
    locked = lock_obligation(obligation)
    require_open(locked)
    latest = VerifiedEmission.objects.filter(obligation=locked).order_by("-version").first()
    if latest is not None and (latest.quantity, latest.report_reference) == (quantity, report_reference):
        mark_unchanged()
        return latest
    emission = VerifiedEmission.objects.create(
        obligation=locked,
        version=(latest.version if latest else 0) + 1,
        quantity=quantity,
        report_reference=report_reference[:100],
        note=note[:500],
        recorded_by_id=actor.participant_id,
        actor_label=actor.label,
        created_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="compliance.emissions_record",
        obj=emission,
        payload={
            "year": locked.year_id,
            "entity": locked.entity_id,
            "obligation": locked.pk,
            "version": emission.version,
            "quantity": quantity,
            "previous": latest.quantity if latest else None,
            "report_reference": report_reference,
            "note": note,
        },
        at=emission.created_at,
    )
    return emission


@service
@idempotent_service("emissions_determine")
def emissions_determine(
    *,
    actor: Actor,
    obligation: Obligation,
    quantity: int,
    basis: str,
    today: date | None = None,
    idempotency_key: str | None = None,
) -> VerifiedEmission:
    """Enter the emissions the authority determines, conservatively, for an entity with none verified (registry).

    Allowed after the year's ``emissions_due`` date while the obligation is open and has no verified version.
    The figure is recorded as the next emission version, flagged ``conservative`` with its stated basis; it
    is the obligation from then on (a later verified report is a correction, recorded as usual).
    """
    require_registry(actor)
    check_tonnes("quantity", quantity)
    basis = (basis or "").strip()
    if not basis:
        raise DeterminationBasisMissing()
    today = today or timezone.localdate()
    year = lock_year(obligation.year_id)
    locked = lock_obligation(obligation)
    if locked.status not in (ObligationStatus.OPEN, ObligationStatus.UNVERIFIED):
        raise ComplianceYearClosed(details={"year": locked.year_id, "status": locked.status})
    due = year.emissions_due or default_emissions_due(year.year)
    if today <= due:
        raise EmissionsDueNotReached(details={"year": year.year, "emissions_due": due, "today": today})
    latest = VerifiedEmission.objects.filter(obligation=locked).order_by("-version").first()
    if latest is not None and not latest.conservative:
        raise EmissionsAlreadyVerified(details={"version": latest.version, "quantity": latest.quantity})
    if latest is not None and (latest.quantity, latest.note) == (quantity, basis[:500]):
        mark_unchanged()
        return latest
    status_before = locked.status
    emission = VerifiedEmission.objects.create(
        obligation=locked,
        version=(latest.version if latest else 0) + 1,
        quantity=quantity,
        report_reference="",
        note=basis[:500],
        conservative=True,
        recorded_by_id=actor.participant_id,
        actor_label=actor.label,
        created_at=timezone.now(),
    )
    if status_before == ObligationStatus.UNVERIFIED:
        _assess_determined(locked, quantity, year)
    audit_record(
        actor=actor,
        action="compliance.emissions_determine",
        obj=emission,
        payload={
            "year": locked.year_id,
            "entity": locked.entity_id,
            "obligation": locked.pk,
            "version": emission.version,
            "quantity": quantity,
            "previous": latest.quantity if latest else None,
            "basis": basis,
            "emissions_due": due,
            "status_before": status_before,
            "status": locked.status,
            "shortfall": locked.shortfall,
            "price_fen": locked.price_fen,
        },
        at=emission.created_at,
    )
    return emission


def _assess_determined(obligation: Obligation, quantity: int, year: ComplianceYear) -> None:
    """An obligation assessed ``unverified`` takes the determined figure: complete, or short by what its
    surrenders don't cover, with the penalty range at the year's penalty price (as the assessment would)."""
    surrendered = figures_of([obligation.pk])[obligation.pk].surrendered
    obligation.assessed_emissions = quantity
    obligation.assessed_surrendered = surrendered
    obligation.shortfall = max(0, quantity - surrendered)
    obligation.status = ObligationStatus.SHORT if obligation.shortfall else ObligationStatus.COMPLETE
    price, _ = penalty_price(year)
    if obligation.shortfall and price is not None:
        obligation.price_fen = price
        obligation.penalty_min_fen = obligation.shortfall * price * PENALTY_MIN_MULTIPLE
        obligation.penalty_max_fen = obligation.shortfall * price * PENALTY_MAX_MULTIPLE
    Obligation.objects.filter(pk=obligation.pk).update(
        status=obligation.status,
        assessed_emissions=obligation.assessed_emissions,
        assessed_surrendered=obligation.assessed_surrendered,
        shortfall=obligation.shortfall,
        price_fen=obligation.price_fen,
        penalty_min_fen=obligation.penalty_min_fen,
        penalty_max_fen=obligation.penalty_max_fen,
    )
