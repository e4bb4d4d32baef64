"""The compliance cycle (履约): years and covered entities, verified emissions, allocation with true-up,
surrender, and the deadline assessment with its penalty range.

Rules and roundings, stated once:

- Pre-allocation for year Y = floor(share x the entity's latest verified emissions of Y-1), whole
  tonnes (default share 70%): it never exceeds the share, and the true-up settles the rest.
- A true-up moves the year's allocation to the approved amount: it issues the difference (new serials
  out of the issuance account) or takes it back (to the cancellation sink, never back to issuance).
  A take-back the allocation account can't cover from available units is refused as a whole
  (``takeback_units_unavailable``); the refusal and its shortfall (requested - available) are recorded.
- A surrender for Y takes allowances of vintage Y or earlier and CCER from projects not covered by the
  ETS; CCER may cover at most floor(5% x the obligation) over all of the year's surrenders; the
  obligation is the entity's latest verified emissions of Y; nobody surrenders more than remains.
- After the deadline an obligation is complete or short by N t. Its penalty range is 5 to 10 times the
  average trading price of CEA-Y over the month before the deadline (the day after the same date a
  month earlier, through the deadline): the volume-weighted average of its trades, rounded half up to
  the fen, else the previous close. Penalties are whole fen: shortfall x price x 5 and x 10.

Every service checks and changes under the year's and the obligation's row locks (in the order
``exchange.locks`` gives), so concurrent surrenders of one entity are serialised and each sees the ones
before it.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core.errors import InvalidInput, NotFound
from core.errors import translatable as _
from core.limits import MAX_QUANTITY, check_quantity, is_quantity
from exchange.errors import (
    DuplicateObject,
    InsufficientAvailable,
    InvalidState,
    RuleViolation,
)
from exchange.faults import crash_point
from exchange.locks import lock_balances, lock_row, lock_rows
from exchange.models import (
    Account,
    AccountKind,
    AllocationEntry,
    AllocationKind,
    AllocationOutcome,
    Asset,
    AssetKind,
    ComplianceYear,
    Obligation,
    ObligationStatus,
    Surrender,
    SurrenderItem,
    Transaction,
    TransactionKind,
    VerifiedEmission,
)
from exchange.models.compliance import BASIS_POINTS, PENALTY_MAX_MULTIPLE, PENALTY_MIN_MULTIPLE
from exchange.selectors.compliance import ccer_limit, figures_of, remaining
from exchange.selectors.prices import average_price
from exchange.services.accounts import check_source, system_account
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.idempotency import idempotent_service
from exchange.services.issuance import (
    AllocationRow,
    cea_allocate,
    cea_asset_code,
    cea_vintage_create,
    main_account,
)
from exchange.services.ledger import Leg, journal_open, ledger_post
from exchange.services.retirement import units_cancel

DEFAULT_PREALLOCATION_BP = 7000
DEFAULT_CCER_LIMIT_BP = 500


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
    default_message = _("CCER may cover at most 5% of the obligation, counting the year's earlier surrenders.")


class ExceedsRemainingObligation(RuleViolation):
    code = "exceeds_remaining_obligation"
    default_message = _("That is more than remains to surrender for the year.")


class UnitsHeld(InsufficientAvailable):
    code = "units_held"
    default_message = _(
        "Some of those units are held (open orders, pledges): only available units can be surrendered."
    )


class TakebackUnavailable(InsufficientAvailable):
    code = "takeback_units_unavailable"
    default_message = _("The entity no longer holds the units to take back; the shortfall is recorded.")
    # Raised after the refusal is committed: a keyed request commits it and frees its key.
    recorded = True


class AssetNotSurrenderable(InvalidInput):
    code = "asset_not_surrenderable"
    default_message = _("Only allowances and CCER are surrendered.")


# --- rules as functions ----------------------------------------------------------------------------------
def default_deadline(year: int) -> date:
    return date(year + 1, 12, 31)


def preallocation_quantity(emissions: int, share_bp: int) -> int:
    """floor(share x emissions): whole tonnes, never more than the share."""
    return emissions * share_bp // BASIS_POINTS


def penalty_window(deadline: date) -> tuple[date, date]:
    """The month before the deadline: from the day after the same date a month earlier (clipped to the
    month's end) through the deadline itself. 2025-12-31 gives 2025-12-01..2025-12-31."""
    year, month = (deadline.year, deadline.month - 1) if deadline.month > 1 else (deadline.year - 1, 12)
    day = min(deadline.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) + timedelta(days=1), deadline


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)


def _check_share(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= BASIS_POINTS:
        raise InvalidInput(f"{name} is in basis points, 0 to {BASIS_POINTS}.", details={name: str(value)})


def _check_tonnes(name: str, value: int) -> None:
    if not is_quantity(value, minimum=0):
        raise InvalidInput(
            f"{name} is a whole number of tonnes from 0 to {MAX_QUANTITY}.", details={name: str(value)}
        )


class InvalidDeadline(InvalidInput):
    code = "invalid_deadline"
    default_message = _("The deadline falls after the compliance year ends.")


def _check_deadline(year: int, deadline: date) -> None:
    if deadline <= date(year, 12, 31):
        raise InvalidDeadline(details={"deadline": deadline})


def _lock_year(year: int) -> ComplianceYear:
    locked = lock_row(ComplianceYear.objects.filter(pk=year))
    if locked is None:
        raise ComplianceYearNotFound(details={"year": year})
    return locked


def _lock_obligation(obligation: Obligation) -> Obligation:
    (locked,) = lock_rows(Obligation.objects.filter(pk=obligation.pk))
    return locked


def _require_open(obligation: Obligation) -> None:
    if obligation.status != ObligationStatus.OPEN:
        raise ComplianceYearClosed(details={"year": obligation.year_id, "status": obligation.status})


def allowance_of(year: int) -> Asset:
    asset = Asset.objects.filter(code=cea_asset_code(year)).first()
    if asset is None:
        raise InvalidState(f"{cea_asset_code(year)} does not exist.", details={"asset": cea_asset_code(year)})
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
) -> ComplianceYear:
    """Open a compliance year (registry); creates the year's allowance vintage if it doesn't exist."""
    _require_registry(actor)
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidInput("The compliance year is a year.", details={"year": str(year)})
    deadline = deadline or default_deadline(year)
    _check_deadline(year, deadline)
    _check_share("preallocation_bp", preallocation_bp)
    _check_share("ccer_limit_bp", ccer_limit_bp)
    if ComplianceYear.objects.filter(pk=year).exists():
        raise DuplicateObject(f"Compliance year {year} exists already.", details={"year": year})
    if not Asset.objects.filter(code=cea_asset_code(year)).exists():
        cea_vintage_create(actor=actor, vintage=year)
    try:
        with transaction.atomic():
            created = ComplianceYear.objects.create(
                year=year, deadline=deadline, preallocation_bp=preallocation_bp, ccer_limit_bp=ccer_limit_bp
            )
    except IntegrityError:
        raise DuplicateObject(f"Compliance year {year} exists already.", details={"year": year}) from None
    audit_record(
        actor=actor,
        action="compliance.year_create",
        obj=created,
        payload={
            "year": year,
            "deadline": deadline,
            "preallocation_bp": preallocation_bp,
            "ccer_limit_bp": ccer_limit_bp,
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
) -> ComplianceYear:
    """Change an open year's deadline or shares (registry). Records made before keep their figures."""
    _require_registry(actor)
    locked = _lock_year(year.pk)
    if locked.is_closed:
        raise ComplianceYearClosed(details={"year": locked.year})
    changes: dict[str, Any] = {}
    if deadline is not None and deadline != locked.deadline:
        _check_deadline(locked.year, deadline)
        changes["deadline"] = deadline
    for name, value in (("preallocation_bp", preallocation_bp), ("ccer_limit_bp", ccer_limit_bp)):
        if value is not None and value != getattr(locked, name):
            _check_share(name, value)
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
    *, actor: Actor, year: ComplianceYear, entities: Sequence[Participant]
) -> list[Obligation]:
    """List compliance entities as covered for the year (registry): one obligation each, once.

    Covering an entity again changes nothing. Its allocations go to its first holding account.
    """
    _require_registry(actor)
    if not entities:
        raise InvalidInput("Name the entities to cover.")
    locked = _lock_year(year.pk)
    if locked.is_closed:
        raise ComplianceYearClosed(details={"year": locked.year})
    unique = sorted({p.pk: p for p in entities}.values(), key=lambda p: p.pk)
    for participant in unique:
        if participant.kind != ParticipantKind.COMPLIANCE_ENTITY:
            raise NotComplianceEntity(
                f"{participant.name} is a {participant.get_kind_display().lower()}, not a compliance entity.",
                details={"participant": participant.pk, "kind": participant.kind},
            )
    existing = set(
        Obligation.objects.filter(year=locked, entity__in=unique).values_list("entity_id", flat=True)
    )
    created = 0
    for participant in unique:
        if participant.pk in existing:
            continue
        account = main_account(participant)
        obligation = Obligation.objects.create(year=locked, entity=participant, account=account)
        audit_record(
            actor=actor,
            action="compliance.cover",
            obj=obligation,
            payload={"year": locked.year, "entity": participant.pk, "account": account.number},
        )
        created += 1
    if not created:
        mark_unchanged()
    return list(
        Obligation.objects.filter(year=locked, entity__in=unique)
        .select_related("entity", "account")
        .order_by("pk")
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
    _check_tonnes("quantity", quantity)
    report_reference, note = report_reference.strip(), note.strip()
    locked = _lock_obligation(obligation)
    _require_open(locked)
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


# --- allocation ------------------------------------------------------------------------------------------
@dataclass
class PreallocationResult:
    year: int
    transaction: Transaction | None
    entries: list[AllocationEntry] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


@service
def preallocation_run(*, actor: Actor, year: ComplianceYear) -> PreallocationResult:
    """Pre-allocate the year's allowances to every covered entity not allocated yet (registry).

    Each gets floor(share x its latest verified emissions of the year before), all in one allocation
    transaction. Entities without verified emissions for the year before, or allocated already, are
    skipped and reported. Running it again allocates nothing twice.
    """
    _require_registry(actor)
    locked = _lock_year(year.pk)
    obligations = lock_rows(Obligation.objects.filter(year=locked).order_by("pk"))
    accounts = Account.objects.select_related("participant").in_bulk([o.account_id for o in obligations])
    for obligation in obligations:
        obligation.account = accounts[obligation.account_id]
    allocated = set(
        AllocationEntry.objects.filter(obligation__in=obligations).values_list("obligation_id", flat=True)
    )
    prior: dict[int, int] = {}
    earlier = VerifiedEmission.objects.filter(
        obligation__year_id=locked.year - 1, obligation__entity_id__in=[o.entity_id for o in obligations]
    ).order_by("obligation_id", "-version")
    for entity_id, quantity in earlier.values_list("obligation__entity_id", "quantity"):
        prior.setdefault(entity_id, quantity)
    result = PreallocationResult(year=locked.year, transaction=None)
    rows: list[tuple[Obligation, int, int]] = []
    for obligation in obligations:
        basis = prior.get(obligation.entity_id)
        reason = None
        if obligation.pk in allocated:
            reason = "allocated_already"
        elif basis is None:
            reason = "no_prior_emissions"
        elif preallocation_quantity(basis, locked.preallocation_bp) == 0:
            reason = "nothing_to_allocate"
        if reason:
            result.skipped.append({"entity": obligation.entity_id, "reason": reason})
            continue
        assert basis is not None
        rows.append((obligation, basis, preallocation_quantity(basis, locked.preallocation_bp)))
    if not rows:
        mark_unchanged()
        return result
    txn = cea_allocate(
        actor=actor,
        asset=allowance_of(locked.year),
        rows=[
            AllocationRow(account=o.account, quantity=q, line=i) for i, (o, _, q) in enumerate(rows, start=1)
        ],
        memo=f"Pre-allocation {locked.year}",
    )
    now = timezone.now()
    result.transaction = txn
    result.entries = AllocationEntry.objects.bulk_create(
        [
            AllocationEntry(
                obligation=o,
                kind=AllocationKind.PRE_ALLOCATION,
                outcome=AllocationOutcome.APPLIED,
                basis=basis,
                allocated_before=0,
                target=q,
                quantity=q,
                transaction=txn,
                actor_label=actor.label,
                created_at=now,
            )
            for o, basis, q in rows
        ]
    )
    audit_record(
        actor=actor,
        action="compliance.preallocate",
        obj=locked,
        payload={
            "year": locked.year,
            "share_bp": locked.preallocation_bp,
            "transaction": txn.pk,
            "rows": [[o.entity_id, o.account.number, basis, q] for o, basis, q in rows],
            "skipped": [[s["entity"], s["reason"]] for s in result.skipped],
        },
        at=now,
    )
    return result


@service
@idempotent_service("true_up_apply")
def true_up_apply(
    *, actor: Actor, obligation: Obligation, approved: int, idempotency_key: str | None = None
) -> AllocationEntry:
    """Bring the year's allocation of one entity to the ``approved`` amount (registry) and record it.

    Issues the difference, or takes it back from the allocation account's available units. A take-back
    those can't cover moves nothing and is recorded as refused with its shortfall; callers raise
    ``TakebackUnavailable`` for it (``allocation_true_up``). The same approved amount again changes
    nothing; an Idempotency-Key (claimed by ``@idempotent_service``) replays the entry it first made.
    """
    _require_registry(actor)
    _check_tonnes("approved", approved)
    locked = _lock_obligation(obligation)
    asset = allowance_of(locked.year_id)
    allocated = figures_of([locked.pk])[locked.pk].allocated
    latest = AllocationEntry.objects.filter(obligation=locked).order_by("-id").first()
    now = timezone.now()
    entry = AllocationEntry(
        obligation=locked,
        kind=AllocationKind.TRUE_UP,
        outcome=AllocationOutcome.APPLIED,
        basis=approved,
        allocated_before=allocated,
        target=approved,
        quantity=approved - allocated,
        actor_label=actor.label,
        created_at=now,
    )
    memo = f"True-up {locked.year_id} to {approved} t approved"
    if entry.quantity == 0:
        if latest is not None and (latest.kind, latest.outcome, latest.target) == (
            AllocationKind.TRUE_UP,
            AllocationOutcome.APPLIED,
            approved,
        ):
            mark_unchanged()
            return latest
    elif entry.quantity > 0:
        entry.transaction = cea_allocate(
            actor=actor,
            asset=asset,
            rows=[AllocationRow(account=locked.account, quantity=entry.quantity)],
            memo=memo,
        )
    else:
        need = -entry.quantity
        key = (locked.account_id, asset.pk)
        available = lock_balances([key])[key].available
        if available < need:
            if latest is not None and (
                latest.outcome,
                latest.target,
                latest.allocated_before,
                latest.available,
            ) == (AllocationOutcome.REFUSED, approved, allocated, available):
                mark_unchanged()  # this very refusal is recorded already
                return latest
            entry.outcome, entry.quantity = AllocationOutcome.REFUSED, 0
            entry.available, entry.shortfall = available, need - available
        else:
            entry.transaction = units_cancel(
                actor=actor,
                account=locked.account,
                asset=asset,
                quantity=need,
                reason=memo,
                kind=TransactionKind.TAKEBACK,
            )
    entry.save()
    audit_record(
        actor=actor,
        action="compliance.true_up",
        obj=entry,
        payload={
            "year": locked.year_id,
            "entity": locked.entity_id,
            "obligation": locked.pk,
            "approved": approved,
            "allocated_before": allocated,
            "quantity": entry.quantity,
            "outcome": entry.outcome,
            "available": entry.available,
            "shortfall": entry.shortfall,
            "transaction": entry.transaction_id,
        },
        at=now,
    )
    return entry


def allocation_true_up(
    *, actor: Actor, obligation: Obligation, approved: int, idempotency_key: str | None = None
) -> AllocationEntry:
    """``true_up_apply``, raising ``TakebackUnavailable`` when the take-back was refused.

    The refusal is recorded (committed) by ``true_up_apply`` before it is raised, so don't call this
    inside a transaction of your own that an exception would roll back.
    """
    entry = true_up_apply(
        actor=actor, obligation=obligation, approved=approved, idempotency_key=idempotency_key
    )
    if entry.outcome == AllocationOutcome.REFUSED:
        requested = entry.allocated_before - entry.target
        raise TakebackUnavailable(
            f"{requested} t are to be taken back but the account has {entry.available} available; "
            f"the shortfall of {entry.shortfall} t is recorded.",
            details={
                "entry": entry.pk,
                "requested": requested,
                "available": entry.available,
                "shortfall": entry.shortfall,
            },
        )
    return entry


# --- surrender -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SurrenderLine:
    asset: Asset
    quantity: int


@service
@idempotent_service("surrender_create")
def surrender_create(
    *,
    actor: Actor,
    account: Account,
    year: int,
    items: Sequence[SurrenderLine],
    idempotency_key: str | None = None,
) -> Surrender:
    """Surrender units from one of the entity's accounts for its obligation of ``year``.

    All items move to the surrender sink in one journal transaction (their serial blocks become
    ``surrendered``), or nothing moves. Refusals, checked in this order, each with its own code:
    vintage after the year, CCER of an ETS-covered project, CCER over the limit, more than remains,
    held units (``units_held``), too few units (``insufficient_available``).
    """
    check_source(actor, account)
    if not items:
        raise InvalidInput("A surrender has at least one item.")
    seen: set[int] = set()
    for line in items:
        check_quantity(line.quantity)
        if line.asset.kind not in (AssetKind.ALLOWANCE, AssetKind.CCER):
            raise AssetNotSurrenderable(details={"asset": line.asset.code})
        if line.asset.pk in seen:
            raise InvalidInput("Each asset appears once in a surrender.", details={"asset": line.asset.code})
        seen.add(line.asset.pk)
    obligation = Obligation.objects.filter(year_id=year, entity_id=account.participant_id).first()
    if obligation is None:
        raise ObligationNotFound(
            f"The owner of {account.number} has no obligation for {year}.", details={"year": year}
        )
    request = {
        "account": account.number,
        "year": year,
        "items": [[line.asset.code, line.quantity] for line in items],
    }
    txn, _ = journal_open(
        kind=TransactionKind.SURRENDER,
        actor=actor,
        idempotency_key=None,
        request=request,
        memo=f"Surrender for {year}",
        metadata={"year": year, "obligation": obligation.pk},
    )

    locked = _lock_obligation(obligation)
    _require_open(locked)
    figures = figures_of([locked.pk])[locked.pk]
    if figures.verified is None:
        raise EmissionsNotVerified(details={"year": year})
    compliance_year = ComplianceYear.objects.get(pk=year)
    projects = {
        asset.pk: asset.project for asset in Asset.objects.filter(pk__in=seen).select_related("project")
    }
    for line in items:
        asset = line.asset
        if asset.kind == AssetKind.ALLOWANCE and asset.vintage is not None and asset.vintage > year:
            raise VintageAfterYear(
                f"{asset.code} is of vintage {asset.vintage}; only vintage {year} or earlier counts.",
                details={"asset": asset.code, "vintage": asset.vintage, "year": year},
            )
        project = projects.get(asset.pk)
        if asset.kind == AssetKind.CCER and project is not None and project.ets_covered:
            raise CcerEtsCovered(
                f"{asset.code} comes from {project.code}, a project covered by the ETS.",
                details={"asset": asset.code, "project": project.code},
            )
    total = sum(line.quantity for line in items)
    ccer = sum(line.quantity for line in items if line.asset.kind == AssetKind.CCER)
    limit = ccer_limit(figures.verified, compliance_year.ccer_limit_bp)
    if ccer and figures.ccer_surrendered + ccer > limit:
        raise CcerLimitExceeded(
            f"CCER may cover {limit} t of this obligation; {figures.ccer_surrendered} t surrendered already, "
            f"{ccer} t requested.",
            details={
                "limit": limit,
                "surrendered": figures.ccer_surrendered,
                "requested": ccer,
                "obligation": figures.verified,
            },
        )
    left = remaining(figures.verified, figures.surrendered) or 0
    if total > left:
        raise ExceedsRemainingObligation(
            f"{left} t remain to surrender for {year}; {total} t requested.",
            details={
                "remaining": left,
                "requested": total,
                "obligation": figures.verified,
                "surrendered": figures.surrendered,
            },
        )
    balances = lock_balances([(account.pk, line.asset.pk) for line in items])
    for line in items:
        held = balances[(account.pk, line.asset.pk)]
        if held.available < line.quantity:
            error = UnitsHeld if held.total >= line.quantity else InsufficientAvailable
            raise error(
                f"Account {account.number} has {held.available} {line.asset.code} available "
                f"({held.held} held); {line.quantity} requested.",
                details={
                    "account": account.number,
                    "asset": line.asset.code,
                    "total": held.total,
                    "held": held.held,
                    "available": held.available,
                    "requested": line.quantity,
                },
            )

    sink = system_account(AccountKind.SURRENDER)
    posted = ledger_post(txn, [Leg(line.asset, account, sink, line.quantity) for line in items])
    surrender = Surrender.objects.create(
        obligation=locked,
        account=account,
        transaction=txn,
        quantity=total,
        ccer_quantity=ccer,
        created_at=txn.created_at,
    )
    SurrenderItem.objects.bulk_create(
        [SurrenderItem(surrender=surrender, asset=line.asset, quantity=line.quantity) for line in items]
    )
    audit_record(
        actor=actor,
        action="compliance.surrender",
        obj=surrender,
        payload={
            **request,
            "entity": locked.entity_id,
            "emissions": figures.verified,
            "surrendered_before": figures.surrendered,
            "quantity": total,
            "ccer_quantity": ccer,
            "transaction": txn.pk,
            "ranges": [
                [line.asset.code, first, last]
                for line, ranges in zip(items, posted.ranges, strict=True)
                for first, last in ranges
            ],
            "entry_digest": posted.digest,
        },
        at=txn.created_at,
    )
    return surrender


# --- the deadline ----------------------------------------------------------------------------------------
@service
def compliance_assess(*, actor: Actor, year: ComplianceYear, today: date | None = None) -> list[Obligation]:
    """After the deadline, set each obligation's status, shortfall and penalty range, and close the year.

    Registry or the scheduled job. Refused before the deadline has passed (China time). Assessing a
    closed year again changes nothing.
    """
    _require_registry(actor)
    today = today or timezone.localdate()
    locked = _lock_year(year.pk)
    if locked.is_closed:
        mark_unchanged()
        return list(Obligation.objects.filter(year=locked).order_by("pk"))
    if today <= locked.deadline:
        raise DeadlineNotReached(
            f"The deadline of {locked.year} is {locked.deadline}; assessment runs from the day after.",
            details={"year": locked.year, "deadline": locked.deadline, "today": today},
        )
    start, end = penalty_window(locked.deadline)
    asset = Asset.objects.filter(code=cea_asset_code(locked.year)).first()
    price = average_price(asset, start, end) if asset is not None else None
    obligations = lock_rows(Obligation.objects.filter(year=locked, status=ObligationStatus.OPEN).order_by("pk"))
    figures = figures_of([o.pk for o in obligations])
    now = timezone.now()
    counts = {status: 0 for status in ObligationStatus.values}
    shortfall_total = 0
    for obligation in obligations:
        f = figures[obligation.pk]
        obligation.assessed_at = now
        obligation.assessed_surrendered = f.surrendered
        obligation.assessed_emissions = f.verified
        if f.verified is None:
            obligation.status = ObligationStatus.UNVERIFIED
        else:
            obligation.shortfall = max(0, f.verified - f.surrendered)
            obligation.status = ObligationStatus.SHORT if obligation.shortfall else ObligationStatus.COMPLETE
            if price is not None:
                obligation.price_fen = price
                obligation.penalty_min_fen = obligation.shortfall * price * PENALTY_MIN_MULTIPLE
                obligation.penalty_max_fen = obligation.shortfall * price * PENALTY_MAX_MULTIPLE
            shortfall_total += obligation.shortfall
        counts[obligation.status] += 1
    Obligation.objects.bulk_update(
        obligations,
        [
            "status",
            "assessed_at",
            "assessed_emissions",
            "assessed_surrendered",
            "shortfall",
            "price_fen",
            "penalty_min_fen",
            "penalty_max_fen",
        ],
        batch_size=1000,
    )
    for obligation in obligations:
        audit_record(
            actor=actor,
            action="compliance.assess",
            obj=obligation,
            payload={
                "year": locked.year,
                "entity": obligation.entity_id,
                "status": obligation.status,
                "emissions": obligation.assessed_emissions,
                "surrendered": obligation.assessed_surrendered,
                "shortfall": obligation.shortfall,
                "price_fen": obligation.price_fen,
                "penalty_min_fen": obligation.penalty_min_fen,
                "penalty_max_fen": obligation.penalty_max_fen,
            },
            at=now,
        )
    ComplianceYear.objects.filter(pk=locked.pk).update(closed_at=now)
    locked.closed_at = now
    audit_record(
        actor=actor,
        action="compliance.year_close",
        obj=locked,
        payload={
            "year": locked.year,
            "deadline": locked.deadline,
            "price_asset": asset.code if asset else None,
            "price_window": [start, end],
            "price_fen": price,
            "obligations": len(obligations),
            "counts": counts,
            "shortfall": shortfall_total,
        },
        at=now,
    )
    crash_point("compliance.assessed")
    return obligations


def compliance_deadlines_run(*, today: date | None = None, actor: Actor | None = None) -> list[int]:
    """Assess every open year whose deadline has passed, each in its own transaction; return the years.

    What the scheduled task runs: safe to run twice (an assessed year is closed and skipped).
    """
    today = today or timezone.localdate()
    actor = actor or Actor.system("compliance_deadlines")
    assessed = []
    due = ComplianceYear.objects.filter(closed_at__isnull=True, deadline__lt=today).order_by("year")
    for compliance_year in due:
        compliance_assess(actor=actor, year=compliance_year, today=today)
        assessed.append(compliance_year.year)
    return assessed
