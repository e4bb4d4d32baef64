"""Surrender for compliance (履约清缴) and the deadline assessment, with late completion.

Rules and roundings, stated once (sources in docs/compliance.md):

- A surrender for Y takes allowances of vintage Y or earlier and CCER from projects not covered by the ETS;
  CCER may cover at most floor(5% x the obligation) over all of the year's surrenders; the obligation is the
  entity's latest emission version of Y (verified, or determined conservatively); nobody surrenders more than
  remains (less any shortfall the registry decided to deduct from the next year's allocation).
- Allowances of the vintages a plan year's carryover rule covers, surrendered for a later year, count against
  the entity's carryover limit (``exchange.selectors.compliance_rules.carryover_limit``) where the rule is
  enforced: a surrender above it is refused (``carryover_limit_exceeded``).
- After the deadline an obligation is complete, short by N t, or unverified. A short obligation still takes
  surrenders (Decree 775 art. 24 orders correction); the one that covers what remains completes it as
  ``late_complete``. Its penalty range stays as assessed: 5 to 10 times the market's official price of the
  last calendar month ending on or before the deadline (entered by the authority), else the volume-weighted
  average of CEA-Y's trades over the month before the deadline, rounded half up to the fen, else the previous
  close. Penalties are whole fen: shortfall x price x 5 and x 10.

Every service checks and changes under the year's and the obligation's row locks (in the order
``exchange.locks`` gives), so concurrent surrenders of one entity are serialised and each sees the ones
before it. The years, emissions and allocation services live in ``exchange.services.obligations`` and
``exchange.services.allocation``; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.actors import Actor
from core import clock
from core.errors import InvalidInput
from core.i18n import registry_text
from core.limits import check_quantity
from exchange.errors import InsufficientAvailable
from exchange.faults import crash_point
from exchange.locks import lock_balances, lock_rows
from exchange.models import (
    Account,
    AccountKind,
    AllocationDeduction,
    Asset,
    AssetKind,
    ComplianceYear,
    Obligation,
    ObligationStatus,
    Surrender,
    SurrenderItem,
    TransactionKind,
)
from exchange.models.compliance import PENALTY_MAX_MULTIPLE, PENALTY_MIN_MULTIPLE
from exchange.selectors.compliance import ccer_limit, figures_of, remaining
from exchange.selectors.compliance_rules import carryover_limit, carryover_rules_for, penalty_price
from exchange.services.accounts import check_source, system_account
from exchange.services.allocation import (  # noqa: F401  (re-exported)
    AllocationResult,
    PreallocationResult,
    allocation_final_run,
    allocation_input_record,
    allocation_rule_set,
    allocation_true_up,
    deduction_decide,
    preallocation_run,
    rule_in_force,
    true_up_apply,
)
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.ccer import check_ccer_offset
from exchange.services.idempotency import idempotent_service
from exchange.services.issuance import cea_asset_code
from exchange.services.ledger import Leg, journal_open, ledger_post
from exchange.services.obligations import (  # noqa: F401  (re-exported)
    DEFAULT_CCER_LIMIT_BP,
    DEFAULT_MARKET,
    DEFAULT_PREALLOCATION_BP,
    AssetNotSurrenderable,
    CarryoverLimitExceeded,
    CcerEtsCovered,
    CcerLimitExceeded,
    ComplianceYearClosed,
    ComplianceYearNotFound,
    DeadlineNotReached,
    EmissionsNotVerified,
    ExceedsRemainingObligation,
    InvalidDeadline,
    NotComplianceEntity,
    ObligationNotFound,
    TakebackUnavailable,
    UnitsHeld,
    VintageAfterYear,
    allowance_of,
    compliance_year_create,
    compliance_year_update,
    default_deadline,
    emissions_determine,
    emissions_record,
    entities_cover,
    lock_year,
    penalty_window,
    preallocation_quantity,
    require_registry,
)

SURRENDERABLE = (ObligationStatus.OPEN, ObligationStatus.SHORT)


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
    ``surrendered``), or nothing moves. Accepted while the obligation is open and, after the deadline, while
    it is short (the surrender that covers what remains makes it ``late_complete``). Refusals, checked in this
    order, each with its own code: vintage after the year, CCER of an ETS-covered project, CCER over the
    limit, more than remains, over the carryover limit (``carryover_limit_exceeded``), held units
    (``units_held``), too few units (``insufficient_available``).
    """
    check_source(actor, account)
    if not items:
        raise InvalidInput(gettext("A surrender has at least one item."))
    seen: set[int] = set()
    for line in items:
        check_quantity(line.quantity)
        if line.asset.kind not in (AssetKind.ALLOWANCE, AssetKind.CCER):
            raise AssetNotSurrenderable(details={"asset": line.asset.code})
        if line.asset.pk in seen:
            raise InvalidInput(gettext("Each asset appears once in a surrender."), details={"asset": line.asset.code})
        seen.add(line.asset.pk)
    obligation = Obligation.objects.filter(year_id=year, entity_id=account.participant_id).first()
    if obligation is None:
        raise ObligationNotFound(
            gettext("The owner of %(account)s has no obligation for %(year)s.")
            % {"account": account.number, "year": year},
            details={"year": year},
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
        memo=registry_text(gettext_noop("Surrender for %(year)s"), {"year": year}),
        metadata={"year": year, "obligation": obligation.pk},
    )

    today = timezone.localdate()
    carried = {
        rule.pk: (
            rule,
            sum(line.quantity for line in items if _carried_over(line.asset, rule.first_vintage, rule.year)),
        )
        for rule in carryover_rules_for(year, today)
        if rule.enforced
    }
    limits = [(rule, quantity) for rule, quantity in carried.values() if quantity]
    if limits:
        # What an entity carries over counts over all its later years: lock those obligations, in id order.
        later = Obligation.objects.filter(entity_id=obligation.entity_id, year_id__gt=min(r.year for r, _ in limits))
        locked = next(o for o in lock_rows(later.order_by("pk")) if o.pk == obligation.pk)
    else:
        (locked,) = lock_rows(Obligation.objects.filter(pk=obligation.pk))
    if locked.status not in SURRENDERABLE:
        raise ComplianceYearClosed(details={"year": locked.year_id, "status": locked.status})
    figures = figures_of([locked.pk])[locked.pk]
    if figures.verified is None:
        raise EmissionsNotVerified(details={"year": year})
    compliance_year = ComplianceYear.objects.get(pk=year)
    projects = {asset.pk: asset.project for asset in Asset.objects.filter(pk__in=seen).select_related("project")}
    for line in items:
        asset = line.asset
        if asset.kind == AssetKind.ALLOWANCE and asset.vintage is not None and asset.vintage > year:
            raise VintageAfterYear(
                gettext("%(asset)s is of vintage %(vintage)s; only vintage %(year)s or earlier counts.")
                % {"asset": asset.code, "vintage": asset.vintage, "year": year},
                details={"asset": asset.code, "vintage": asset.vintage, "year": year},
            )
        project = projects.get(asset.pk)
        if asset.kind == AssetKind.CCER:
            check_ccer_offset(asset, project, clock.trading_day())
        if asset.kind == AssetKind.CCER and project is not None and project.ets_covered:
            raise CcerEtsCovered(
                gettext("%(asset)s comes from %(project)s, a project covered by the ETS.")
                % {"asset": asset.code, "project": project.code},
                details={"asset": asset.code, "project": project.code},
            )
    total = sum(line.quantity for line in items)
    ccer = sum(line.quantity for line in items if line.asset.kind == AssetKind.CCER)
    limit = ccer_limit(figures.verified, compliance_year.ccer_limit_bp)
    if ccer and figures.ccer_surrendered + ccer > limit:
        raise CcerLimitExceeded(
            gettext(
                "CCER may cover %(limit)s t of this obligation; %(surrendered)s t surrendered already, "
                "%(requested)s t requested."
            )
            % {"limit": limit, "surrendered": figures.ccer_surrendered, "requested": ccer},
            details={
                "limit": limit,
                "surrendered": figures.ccer_surrendered,
                "requested": ccer,
                "obligation": figures.verified,
            },
        )
    deducted = AllocationDeduction.objects.filter(obligation=locked).values_list("quantity", flat=True).first() or 0
    left = max(0, (remaining(figures.verified, figures.surrendered) or 0) - deducted)
    if total > left:
        raise ExceedsRemainingObligation(
            gettext("%(remaining)s t remain to surrender for %(year)s; %(requested)s t requested.")
            % {"remaining": left, "year": year, "requested": total},
            details={
                "remaining": left,
                "requested": total,
                "obligation": figures.verified,
                "surrendered": figures.surrendered,
                "deducted": deducted,
            },
        )
    for rule, quantity in limits:
        cap = carryover_limit(locked.entity_id, rule)
        if cap.used + quantity > cap.limit:
            raise CarryoverLimitExceeded(
                gettext(
                    "Allowances of %(first)s-%(last)s carried over are limited to %(limit)s t; "
                    "%(used)s t used already, %(requested)s t requested."
                )
                % {
                    "first": rule.first_vintage,
                    "last": rule.year,
                    "limit": cap.limit,
                    "used": cap.used,
                    "requested": quantity,
                },
                details={
                    "plan_year": rule.year,
                    "rule_version": rule.version,
                    "limit": cap.limit,
                    "used": cap.used,
                    "requested": quantity,
                    "net_sales": cap.net_sales,
                    "eligible": cap.eligible,
                },
            )
    balances = lock_balances([(account.pk, line.asset.pk) for line in items])
    for line in items:
        held = balances[(account.pk, line.asset.pk)]
        if held.available < line.quantity:
            error = UnitsHeld if held.total >= line.quantity else InsufficientAvailable
            raise error(
                gettext(
                    "Account %(account)s has %(available)s %(asset)s available (%(held)s held); "
                    "%(requested)s requested."
                )
                % {
                    "account": account.number,
                    "available": held.available,
                    "asset": line.asset.code,
                    "held": held.held,
                    "requested": line.quantity,
                },
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
    status_before = locked.status
    if locked.status == ObligationStatus.SHORT and figures.surrendered + total >= figures.verified:
        locked.status, locked.completed_at = ObligationStatus.LATE_COMPLETE, txn.created_at
        Obligation.objects.filter(pk=locked.pk).update(status=locked.status, completed_at=locked.completed_at)
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
            "status_before": status_before,
            "status": locked.status,
            "carried_over": [[rule.year, quantity] for rule, quantity in limits],
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


def _carried_over(asset: Asset, first_vintage: int, last_vintage: int) -> bool:
    return (
        asset.kind == AssetKind.ALLOWANCE
        and asset.vintage is not None
        and first_vintage <= asset.vintage <= last_vintage
    )


# --- the deadline ----------------------------------------------------------------------------------------
@service
def compliance_assess(*, actor: Actor, year: ComplianceYear, today: date | None = None) -> list[Obligation]:
    """After the deadline, set each obligation's status, shortfall and penalty range, and close the year.

    Registry or the scheduled job. Refused before the deadline has passed (China time). Assessing a
    closed year again changes nothing.
    """
    require_registry(actor)
    today = today or timezone.localdate()
    locked = lock_year(year.pk)
    if locked.is_closed:
        mark_unchanged()
        return list(Obligation.objects.filter(year=locked).order_by("pk"))
    if today <= locked.deadline:
        raise DeadlineNotReached(
            gettext("The deadline of %(year)s is %(deadline)s; assessment runs from the day after.")
            % {"year": locked.year, "deadline": locked.deadline},
            details={"year": locked.year, "deadline": locked.deadline, "today": today},
        )
    start, end = penalty_window(locked.deadline)
    asset = Asset.objects.filter(code=cea_asset_code(locked.year)).first()
    price, price_source = penalty_price(locked)
    obligations = lock_rows(Obligation.objects.filter(year=locked, status=ObligationStatus.OPEN).order_by("pk"))
    figures = figures_of([o.pk for o in obligations])
    now = timezone.now()
    # What the assessment sets (late completion comes after it).
    counts = {status: 0 for status in ObligationStatus.values if status != ObligationStatus.LATE_COMPLETE}
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
            "price_source": price_source,
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
