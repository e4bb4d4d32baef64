"""Allocation of allowances (配额分配): rules per sector held as data, the pre-allocation, the final allocation
with its true-up, and the deduction (等量核减) of a previous year's unsurrendered shortfall.

Rules and roundings, stated once (sources in docs/compliance.md):

- The rule of a year, sector and stage (``pre_allocation`` or ``final``) is the latest ``AllocationRule``
  version effective on the day the allocation runs; a sector without its own rule takes the blank-sector rule,
  and a pre-allocation without any rule takes the year's ``preallocation_bp`` share of the previous year.
- ``previous_share``: floor(share x the entity's latest verified emissions of Y-1);
  ``verified_emissions``: floor(share x its latest emissions of Y);
  ``benchmark``: floor(output x benchmark x each correction factor + heat x heat benchmark), computed exactly
  (benchmarks and factors are millionths; nothing is rounded before the one floor).
- A deduction decided for the entity's obligation of Y-1 is taken from each allocation of Y:
  allocated = max(0, computed - deduction); the entry shows both figures and the deduction names the entry
  that first applied it.
- A true-up moves the year's allocation to the approved amount: it issues the difference (new serials) or
  takes it back (to the cancellation sink). A take-back the account can't cover from available units is
  refused whole (``takeback_units_unavailable``); the refusal and its shortfall are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core.i18n import registry_text
from exchange.locks import lock_balances, lock_rows
from exchange.models import (
    Account,
    AllocationDeduction,
    AllocationEntry,
    AllocationInput,
    AllocationKind,
    AllocationMethod,
    AllocationOutcome,
    AllocationRule,
    AllocationStage,
    ComplianceYear,
    Obligation,
    ObligationStatus,
    Transaction,
    TransactionKind,
    VerifiedEmission,
)
from exchange.models.compliance import BASIS_POINTS
from exchange.models.compliance_rules import PPM
from exchange.selectors.compliance import figures_of, remaining
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.four_eyes import four_eyes_check
from exchange.services.idempotency import idempotent_service
from exchange.services.issuance import AllocationRow, cea_allocate
from exchange.services.obligations import (
    AllocationInputMissing,
    DeductionDecided,
    DeductionTooLarge,
    InvalidRule,
    NotShort,
    TakebackUnavailable,
    allowance_of,
    check_sector,
    check_share,
    check_tonnes,
    lock_obligation,
    lock_year,
    preallocation_quantity,
    require_registry,
)
from exchange.services.retirement import units_cancel


# --- the rules -------------------------------------------------------------------------------------------
def rule_in_force(year: int, sector: str, stage: str, on: date) -> AllocationRule | None:
    """The rule version for the year, sector and stage effective on ``on``: the sector's own, else the blank
    sector's; the latest effective date wins, then the latest version."""
    candidates = AllocationRule.objects.filter(year=year, stage=stage, effective_from__lte=on, sector__in={sector, ""})
    best = None
    for rule in candidates.order_by("-effective_from", "-version"):
        if rule.sector == sector:
            return rule
        best = best or rule
    return best


def benchmark_amount(rule: AllocationRule, data: AllocationInput) -> int:
    """floor(output x benchmark x factors + heat x heat benchmark), exactly."""
    names = list(rule.factors or [])
    if set(names) != set((data.factors or {}).keys()):
        raise AllocationInputMissing(
            details={"required_factors": sorted(names), "given": sorted((data.factors or {}).keys())}
        )
    power = Fraction(data.output * (rule.benchmark_ppm or 0), PPM)
    for name in names:
        power *= Fraction(int(data.factors[name]), PPM)
    heat = Fraction(data.heat_output * (rule.heat_benchmark_ppm or 0), PPM)
    return int((power + heat) // 1)


def rule_amount(
    rule: AllocationRule | None,
    *,
    share_bp: int,
    this_year: int | None,
    last_year: int | None,
    data: AllocationInput | None,
) -> int | None:
    """What the rule gives an entity, or None when its basis is missing (emissions, output)."""
    if rule is None or rule.method == AllocationMethod.PREVIOUS_SHARE:
        share = share_bp if rule is None else rule.share_bp
        return None if last_year is None else preallocation_quantity(last_year, share)
    if rule.method == AllocationMethod.VERIFIED_EMISSIONS:
        return None if this_year is None else preallocation_quantity(this_year, rule.share_bp)
    return None if data is None else benchmark_amount(rule, data)


def _rule_payload(rule: AllocationRule) -> dict[str, Any]:
    return {
        "year": rule.year,
        "sector": rule.sector,
        "stage": rule.stage,
        "method": rule.method,
        "share_bp": rule.share_bp,
        "benchmark_ppm": rule.benchmark_ppm,
        "output_unit": rule.output_unit,
        "heat_benchmark_ppm": rule.heat_benchmark_ppm,
        "factors": list(rule.factors or []),
        "effective_from": rule.effective_from,
        "source": rule.source,
    }


@service
@idempotent_service("allocation_rule_set")
def allocation_rule_set(
    *,
    actor: Actor,
    year: int,
    sector: str,
    stage: str,
    method: str,
    effective_from: date,
    source: str,
    share_bp: int = BASIS_POINTS,
    benchmark_ppm: int | None = None,
    heat_benchmark_ppm: int | None = None,
    output_unit: str = "",
    factors: list[str] | None = None,
    idempotency_key: str | None = None,
) -> AllocationRule:
    """Enter a version of a sector's allocation rule for a year (registry). The same values as the latest
    version change nothing; anything else is the next version, effective from its date."""
    require_registry(actor)
    sector = check_sector(sector)
    if stage not in AllocationStage.values:
        raise InvalidRule(details={"stage": stage, "allowed": AllocationStage.values})
    if method not in AllocationMethod.values:
        raise InvalidRule(details={"method": method, "allowed": AllocationMethod.values})
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidRule(details={"year": str(year)})
    check_share("share_bp", share_bp)
    factors = [str(name).strip() for name in (factors or [])]
    if any(not name for name in factors) or len(set(factors)) != len(factors):
        raise InvalidRule(details={"factors": factors})
    if method == AllocationMethod.BENCHMARK:
        if not isinstance(benchmark_ppm, int) or isinstance(benchmark_ppm, bool) or benchmark_ppm <= 0:
            raise InvalidRule(details={"benchmark_ppm": str(benchmark_ppm)})
    else:
        benchmark_ppm, heat_benchmark_ppm, factors = None, None, []
    if heat_benchmark_ppm is not None and (not isinstance(heat_benchmark_ppm, int) or heat_benchmark_ppm < 0):
        raise InvalidRule(details={"heat_benchmark_ppm": str(heat_benchmark_ppm)})
    source = (source or "").strip()
    if not source:
        raise InvalidRule(details={"source": ""})
    values = {
        "method": method,
        "share_bp": share_bp,
        "benchmark_ppm": benchmark_ppm,
        "heat_benchmark_ppm": heat_benchmark_ppm,
        "output_unit": output_unit.strip()[:16],
        "factors": factors,
        "effective_from": effective_from,
        "source": source[:300],
    }
    versions = lock_rows(AllocationRule.objects.filter(year=year, sector=sector, stage=stage).order_by("-version"))
    latest = versions[0] if versions else None
    if latest is not None and all(getattr(latest, name) == value for name, value in values.items()):
        mark_unchanged()
        return latest
    rule = AllocationRule.objects.create(
        year=year,
        sector=sector,
        stage=stage,
        version=(latest.version if latest else 0) + 1,
        actor_label=actor.label,
        created_at=timezone.now(),
        **values,
    )
    audit_record(
        actor=actor,
        action="compliance.allocation_rule_set",
        obj=rule,
        payload={**_rule_payload(rule), "version": rule.version, "previous": _rule_payload(latest) if latest else None},
        at=rule.created_at,
    )
    return rule


@service
@idempotent_service("allocation_input_record")
def allocation_input_record(
    *,
    actor: Actor,
    obligation: Obligation,
    output: int,
    heat_output: int = 0,
    factors: dict[str, int] | None = None,
    reference: str = "",
    idempotency_key: str | None = None,
) -> AllocationInput:
    """Record an entity's output, heat supplied and correction factors for a benchmark allocation (registry or
    verifier). The first record is version 1; a correction is the next version; the same figures again
    change nothing."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, ParticipantKind.VERIFIER)
    check_tonnes("output", output)
    check_tonnes("heat_output", heat_output)
    factors = dict(factors or {})
    for name, value in factors.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 10_000 * PPM:
            raise InvalidRule(
                gettext("A correction factor is above 0 and below 10000 (held in millionths)."),
                details={name: str(value)},
            )
    locked = lock_obligation(obligation)
    latest = AllocationInput.objects.filter(obligation=locked).order_by("-version").first()
    reference = reference.strip()[:100]
    if latest is not None and (latest.output, latest.heat_output, latest.factors, latest.reference) == (
        output,
        heat_output,
        factors,
        reference,
    ):
        mark_unchanged()
        return latest
    data = AllocationInput.objects.create(
        obligation=locked,
        version=(latest.version if latest else 0) + 1,
        output=output,
        heat_output=heat_output,
        factors=factors,
        reference=reference,
        actor_label=actor.label,
        created_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="compliance.allocation_input",
        obj=data,
        payload={
            "year": locked.year_id,
            "entity": locked.entity_id,
            "obligation": locked.pk,
            "version": data.version,
            "output": output,
            "heat_output": heat_output,
            "factors": factors,
            "reference": reference,
        },
        at=data.created_at,
    )
    return data


# --- deductions (等量核减) --------------------------------------------------------------------------------
def pending_deductions(entity_ids: list[int], year: int) -> dict[int, AllocationDeduction]:
    """The deductions decided for these entities' allocations of ``year``, by entity (one query)."""
    rows = AllocationDeduction.objects.filter(target_year=year, obligation__entity_id__in=entity_ids).select_related(
        "obligation"
    )
    return {row.obligation.entity_id: row for row in rows}


def _mark_applied(deductions: list[tuple[AllocationDeduction, AllocationEntry]]) -> None:
    now = timezone.now()
    for deduction, entry in deductions:
        if deduction.applied_entry_id is None:
            AllocationDeduction.objects.filter(pk=deduction.pk, applied_entry__isnull=True).update(
                applied_entry=entry, applied_at=now
            )


@service
@idempotent_service("deduction_decide")
def deduction_decide(
    *,
    actor: Actor,
    obligation: Obligation,
    quantity: int | None = None,
    reason: str = "",
    idempotency_key: str | None = None,
) -> AllocationDeduction:
    """Decide to deduct a short obligation's unsurrendered shortfall from the entity's allocation of the next
    year (registry; Decree 775 art. 24). ``quantity`` defaults to what is still unsurrendered; it is applied
    by the next year's first allocation that runs after the decision, and by each later one of that year."""
    require_registry(actor)
    lock_year(obligation.year_id)
    next_year = ComplianceYear.objects.filter(pk=obligation.year_id + 1)
    if next_year.exists():
        lock_year(obligation.year_id + 1)
    locked = lock_obligation(obligation)
    existing = AllocationDeduction.objects.filter(obligation=locked).first()
    if locked.status != ObligationStatus.SHORT:
        raise NotShort(details={"obligation": locked.pk, "status": locked.status})
    figures = figures_of([locked.pk])[locked.pk]
    left = remaining(figures.verified, figures.surrendered) or 0
    if quantity is None:
        quantity = left if existing is None else existing.quantity
    check_tonnes("quantity", quantity)
    if existing is not None:
        if existing.quantity == quantity:
            mark_unchanged()
            return existing
        raise DeductionDecided(details={"deduction": existing.pk, "quantity": existing.quantity})
    if not 0 < quantity <= left:
        raise DeductionTooLarge(details={"requested": quantity, "unsurrendered": left})
    deduction = AllocationDeduction.objects.create(
        obligation=locked,
        target_year=locked.year_id + 1,
        quantity=quantity,
        reason=reason.strip()[:500],
        actor_label=actor.label,
        created_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="compliance.deduction_decide",
        obj=deduction,
        payload={
            "year": locked.year_id,
            "target_year": deduction.target_year,
            "entity": locked.entity_id,
            "obligation": locked.pk,
            "quantity": quantity,
            "shortfall": locked.shortfall,
            "unsurrendered": left,
            "reason": deduction.reason,
        },
        at=deduction.created_at,
    )
    return deduction


# --- pre-allocation --------------------------------------------------------------------------------------
@dataclass
class AllocationResult:
    year: int
    transaction: Transaction | None
    entries: list[AllocationEntry] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


PreallocationResult = AllocationResult  # the earlier name


def _latest_emissions(year: int, entity_ids: list[int]) -> dict[int, int]:
    latest: dict[int, int] = {}
    rows = VerifiedEmission.objects.filter(obligation__year_id=year, obligation__entity_id__in=entity_ids).order_by(
        "obligation_id", "-version"
    )
    for entity_id, quantity in rows.values_list("obligation__entity_id", "quantity"):
        latest.setdefault(entity_id, quantity)
    return latest


def _latest_inputs(obligation_ids: list[int]) -> dict[int, AllocationInput]:
    latest: dict[int, AllocationInput] = {}
    for data in AllocationInput.objects.filter(obligation_id__in=obligation_ids).order_by("obligation_id", "-version"):
        latest.setdefault(data.obligation_id, data)
    return latest


@service
def preallocation_run(*, actor: Actor, year: ComplianceYear, today: date | None = None) -> AllocationResult:
    """Pre-allocate the year's allowances to every covered entity not allocated yet (registry).

    Each gets what its sector's pre-allocation rule in force gives (default: floor(the year's share x its
    latest verified emissions of the year before)), less any deduction decided for the year, all in one
    allocation transaction. Entities without the rule's basis, or allocated already, are skipped and
    reported. Running it again allocates nothing twice.
    """
    require_registry(actor)
    today = today or timezone.localdate()
    locked = lock_year(year.pk)
    obligations = lock_rows(Obligation.objects.filter(year=locked).order_by("pk"))
    accounts = Account.objects.select_related("participant").in_bulk([o.account_id for o in obligations])
    for obligation in obligations:
        obligation.account = accounts[obligation.account_id]
    allocated = set(AllocationEntry.objects.filter(obligation__in=obligations).values_list("obligation_id", flat=True))
    entity_ids = [o.entity_id for o in obligations]
    prior = _latest_emissions(locked.year - 1, entity_ids)
    current = _latest_emissions(locked.year, entity_ids)
    inputs = _latest_inputs([o.pk for o in obligations])
    deductions = pending_deductions(entity_ids, locked.year)
    result = AllocationResult(year=locked.year, transaction=None)
    rows: list[tuple[Obligation, AllocationRule | None, int, int, int, int]] = []
    for obligation in obligations:
        rule = rule_in_force(locked.year, obligation.sector, AllocationStage.PRE_ALLOCATION, today)
        reason = None
        computed = None
        if obligation.pk in allocated:
            reason = "allocated_already"
        else:
            computed = rule_amount(
                rule,
                share_bp=locked.preallocation_bp,
                this_year=current.get(obligation.entity_id),
                last_year=prior.get(obligation.entity_id),
                data=inputs.get(obligation.pk),
            )
            if computed is None:
                reason = "no_prior_emissions" if rule is None or rule.method == "previous_share" else "no_basis"
            elif computed == 0:
                reason = "nothing_to_allocate"
        if reason:
            result.skipped.append({"entity": obligation.entity_id, "reason": reason})
            continue
        assert computed is not None
        deduction = deductions.get(obligation.entity_id)
        deducted = min(computed, deduction.quantity) if deduction else 0
        basis = (
            prior.get(obligation.entity_id, 0)
            if rule is None or rule.method == "previous_share"
            else (
                current.get(obligation.entity_id, 0)
                if rule.method == "verified_emissions"
                else inputs[obligation.pk].output
            )
        )
        rows.append((obligation, rule, basis, computed, deducted, computed - deducted))
    if not rows:
        mark_unchanged()
        return result
    moving = [(o, q) for o, _, _, _, _, q in rows if q > 0]
    txn = None
    if moving:
        txn = cea_allocate(
            actor=actor,
            asset=allowance_of(locked.year),
            rows=[AllocationRow(account=o.account, quantity=q, line=i) for i, (o, q) in enumerate(moving, start=1)],
            memo=registry_text(gettext_noop("Pre-allocation %(year)s"), {"year": locked.year}),
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
                transaction=txn if q else None,
                rule=rule,
                computed=computed,
                deducted=deducted,
                actor_label=actor.label,
                created_at=now,
            )
            for o, rule, basis, computed, deducted, q in rows
        ]
    )
    _mark_applied(
        [
            (deductions[entry.obligation.entity_id], entry)
            for entry in result.entries
            if entry.deducted and entry.obligation.entity_id in deductions
        ]
    )
    audit_record(
        actor=actor,
        action="compliance.preallocate",
        obj=locked,
        payload={
            "year": locked.year,
            "share_bp": locked.preallocation_bp,
            "transaction": txn.pk if txn else None,
            "rows": [
                [o.entity_id, o.account.number, basis, q, rule.pk if rule else None, computed, deducted]
                for o, rule, basis, computed, deducted, q in rows
            ],
            "skipped": [[s["entity"], s["reason"]] for s in result.skipped],
        },
        at=now,
    )
    return result


# --- true-up ---------------------------------------------------------------------------------------------
def _true_up(
    *,
    actor: Actor,
    locked: Obligation,
    approved: int,
    rule: AllocationRule | None = None,
    computed: int | None = None,
    deducted: int = 0,
) -> tuple[AllocationEntry, bool]:
    """Bring one locked obligation's allocation to ``approved``; return the entry and whether it is new."""
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
        rule=rule,
        computed=computed,
        deducted=deducted,
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
            return latest, False
        if latest is not None and rule is not None and (latest.target, latest.rule_id) == (approved, rule.pk):
            return latest, False
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
                return latest, False  # this very refusal is recorded already
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
            "rule": rule.pk if rule else None,
            "computed": computed,
            "deducted": deducted,
        },
        at=now,
    )
    return entry, True


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
    require_registry(actor)
    check_tonnes("approved", approved)
    locked = lock_obligation(obligation)
    entry, created = _true_up(actor=actor, locked=locked, approved=approved)
    if not created:
        mark_unchanged()
    return entry


def allocation_true_up(
    *, actor: Actor, obligation: Obligation, approved: int, idempotency_key: str | None = None
) -> AllocationEntry:
    """``true_up_apply``, raising ``TakebackUnavailable`` when the take-back was refused.

    The refusal is recorded (committed) by ``true_up_apply`` before it is raised, so don't call this
    inside a transaction of your own that an exception would roll back.
    """
    entry = true_up_apply(actor=actor, obligation=obligation, approved=approved, idempotency_key=idempotency_key)
    if entry.outcome == AllocationOutcome.REFUSED:
        requested = entry.allocated_before - entry.target
        raise TakebackUnavailable(
            gettext(
                "%(requested)s t are to be taken back but the account has %(available)s available; "
                "the shortfall of %(shortfall)s t is recorded."
            )
            % {"requested": requested, "available": entry.available, "shortfall": entry.shortfall},
            details={
                "entry": entry.pk,
                "requested": requested,
                "available": entry.available,
                "shortfall": entry.shortfall,
            },
        )
    return entry


@service
def allocation_final_run(*, actor: Actor, year: ComplianceYear, today: date | None = None) -> AllocationResult:
    """Compute every covered entity's final allocation by its sector's final rule in force and true it up
    (registry): issue the difference or take it back, less any deduction decided for the year.

    Entities without a final rule or its basis (verified emissions, the benchmark inputs) are skipped and
    reported; a take-back the entity can't cover is recorded as refused and reported. Running it again with
    the same rules and figures changes nothing.
    """
    require_registry(actor)
    today = today or timezone.localdate()
    locked = lock_year(year.pk)
    obligations = lock_rows(Obligation.objects.filter(year=locked).order_by("pk"))
    entity_ids = [o.entity_id for o in obligations]
    prior = _latest_emissions(locked.year - 1, entity_ids)
    current = _latest_emissions(locked.year, entity_ids)
    inputs = _latest_inputs([o.pk for o in obligations])
    deductions = pending_deductions(entity_ids, locked.year)
    result = AllocationResult(year=locked.year, transaction=None)
    applied: list[tuple[AllocationDeduction, AllocationEntry]] = []
    changed = False
    planned: list[tuple[Obligation, AllocationRule, int, int]] = []
    for obligation in obligations:
        rule = rule_in_force(locked.year, obligation.sector, AllocationStage.FINAL, today)
        if rule is None:
            result.skipped.append({"entity": obligation.entity_id, "reason": "no_final_rule"})
            continue
        try:
            computed = rule_amount(
                rule,
                share_bp=rule.share_bp,
                this_year=current.get(obligation.entity_id),
                last_year=prior.get(obligation.entity_id),
                data=inputs.get(obligation.pk),
            )
        except AllocationInputMissing:
            computed = None
        if computed is None:
            result.skipped.append({"entity": obligation.entity_id, "reason": "no_basis"})
            continue
        deduction = deductions.get(obligation.entity_id)
        planned.append((obligation, rule, computed, min(computed, deduction.quantity) if deduction else 0))
    # Four eyes over the largest issue of the run, before anything moves (an approval then covers the run).
    figures = figures_of([o.pk for o, _, _, _ in planned])
    four_eyes_check(max([c - d - figures[o.pk].allocated for o, _, c, d in planned] + [0]))
    for obligation, rule, computed, deducted in planned:
        deduction = deductions.get(obligation.entity_id)
        entry, created = _true_up(
            actor=actor,
            locked=obligation,
            approved=computed - deducted,
            rule=rule,
            computed=computed,
            deducted=deducted,
        )
        changed = changed or created
        result.entries.append(entry)
        if entry.outcome == AllocationOutcome.REFUSED:
            result.skipped.append({"entity": obligation.entity_id, "reason": "takeback_units_unavailable"})
        if deduction is not None and deducted and created:
            applied.append((deduction, entry))
    _mark_applied(applied)
    if not changed:
        mark_unchanged()
    else:
        audit_record(
            actor=actor,
            action="compliance.allocate_final",
            obj=locked,
            payload={
                "year": locked.year,
                "entries": [e.pk for e in result.entries],
                "skipped": [[s["entity"], s["reason"]] for s in result.skipped],
            },
        )
    return result
