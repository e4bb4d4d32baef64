"""Reading the compliance cycle: obligations with their figures, statements, the year at a glance.

An obligation's figures are derived from its append-only records, never stored twice: ``verified``
is the latest emission version, ``allocated`` the sum of applied allocation entries (what the true-up
reckons with), ``allocated_units`` what the ledger allocated of the year's vintage to its account
(every allocation and take-back journal entry, those made outside the compliance cycle included: what
people read), ``surrendered`` and ``ccer_surrendered`` the sums of its surrenders. Each is one
correlated subquery, so a list of obligations is one query however long it is.

Who sees what: a compliance entity sees its own obligations; the registry, the exchange, auditors and
verifiers (who record the emissions) see every entity's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import BigIntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core.money import fen_to_str
from exchange.models import (
    AllocationDeduction,
    AllocationEntry,
    AllocationKind,
    AllocationOutcome,
    AssetKind,
    ComplianceYear,
    Obligation,
    ObligationStatus,
    Posting,
    Surrender,
    SurrenderItem,
    TransactionKind,
    VerifiedEmission,
)
from exchange.models.compliance import BASIS_POINTS


def _sum_of(queryset: QuerySet, field: str) -> Coalesce:
    total = (
        queryset.filter(obligation=OuterRef("pk"))
        .order_by()
        .values("obligation")
        .annotate(total=Sum(field))
        .values("total")[:1]
    )
    return Coalesce(Subquery(total, output_field=BigIntegerField()), Value(0), output_field=BigIntegerField())


def _allocated_in_ledger() -> Coalesce:
    """Units of the year's allowance vintage that allocation and take-back entries moved into (or out of)
    the obligation's account."""
    total = (
        Posting.objects.filter(
            account=OuterRef("account"),
            asset__kind=AssetKind.ALLOWANCE,
            asset__vintage=OuterRef("year_id"),
            transaction__kind__in=[TransactionKind.ALLOCATION, TransactionKind.TAKEBACK],
        )
        .order_by()
        .values("account")
        .annotate(total=Sum("quantity"))
        .values("total")[:1]
    )
    return Coalesce(Subquery(total, output_field=BigIntegerField()), Value(0), output_field=BigIntegerField())


def with_figures(queryset: QuerySet[Obligation]) -> QuerySet[Obligation]:
    """Annotate ``verified`` (None before the first version), ``verified_version``, ``allocated``,
    ``allocated_units``, ``surrendered`` and ``ccer_surrendered``."""
    latest = VerifiedEmission.objects.filter(obligation=OuterRef("pk")).order_by("-version")
    return queryset.annotate(
        verified=Subquery(latest.values("quantity")[:1], output_field=BigIntegerField()),
        verified_version=Subquery(latest.values("version")[:1], output_field=BigIntegerField()),
        allocated=_sum_of(AllocationEntry.objects.filter(outcome=AllocationOutcome.APPLIED), "quantity"),
        allocated_units=_allocated_in_ledger(),
        surrendered=_sum_of(Surrender.objects.all(), "quantity"),
        ccer_surrendered=_sum_of(Surrender.objects.all(), "ccer_quantity"),
    )


def sees_all_obligations(actor: Actor) -> bool:
    return actor.sees_everything or actor.is_kind(ParticipantKind.VERIFIER)


def obligations_visible_to(actor: Actor) -> QuerySet[Obligation]:
    queryset = with_figures(Obligation.objects.select_related("entity", "account", "year", "deduction"))
    if sees_all_obligations(actor):
        return queryset
    return queryset.filter(entity_id=actor.participant_id)


@dataclass(frozen=True, slots=True)
class Figures:
    verified: int | None
    allocated: int
    surrendered: int
    ccer_surrendered: int


def figures_of(obligation_ids: Iterable[int]) -> dict[int, Figures]:
    """The figures of these obligations, by id (one query)."""
    rows = with_figures(Obligation.objects.filter(pk__in=list(obligation_ids))).values_list(  # type: ignore[misc]
        "pk", "verified", "allocated", "surrendered", "ccer_surrendered"
    )
    return {pk: Figures(verified, allocated, surrendered, ccer) for pk, verified, allocated, surrendered, ccer in rows}


def ccer_limit(obligation: int, limit_bp: int) -> int:
    """The CCER an obligation may use in all: floor(limit share x obligation), whole tonnes."""
    return obligation * limit_bp // BASIS_POINTS


def remaining(verified: int | None, surrendered: int) -> int | None:
    """What is still to surrender (never negative); None before emissions are verified."""
    return None if verified is None else max(0, verified - surrendered)


# --- the year at a glance --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class YearSummary:
    year: int
    entities: int
    verified_entities: int
    verified: int
    allocated: int
    surrendered: int
    ccer_surrendered: int
    remaining: int
    short_entities: int
    shortfall: int
    status_counts: dict[str, int]


def year_summary(year: ComplianceYear) -> YearSummary:
    """Totals over the year's obligations. Before the assessment "short" counts entities with something
    still to surrender; after it, the assessed shortfalls."""
    rows = list(
        with_figures(Obligation.objects.filter(year=year)).values_list(  # type: ignore[misc]
            "status", "verified", "allocated_units", "surrendered", "ccer_surrendered", "shortfall"
        )
    )
    counts = {status: 0 for status in ObligationStatus.values}
    short_entities = shortfall_total = remaining_total = 0
    for status, verified, _allocated, surrendered, _ccer, assessed_shortfall in rows:
        counts[status] += 1
        left = remaining(verified, surrendered) or 0
        remaining_total += left
        short = assessed_shortfall if status != ObligationStatus.OPEN else left
        if short:
            short_entities += 1
            shortfall_total += short
    return YearSummary(
        year=year.year,
        entities=len(rows),
        verified_entities=sum(1 for r in rows if r[1] is not None),
        verified=sum(r[1] or 0 for r in rows),
        allocated=sum(r[2] for r in rows),
        surrendered=sum(r[3] for r in rows),
        ccer_surrendered=sum(r[4] for r in rows),
        remaining=remaining_total,
        short_entities=short_entities,
        shortfall=shortfall_total,
        status_counts=counts,
    )


# --- an entity's compliance statement --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StatementLine:
    time: datetime
    year: int
    event: str
    asset: str
    quantity: int | None
    reference: str
    detail: str


def compliance_statement_lines(entity: Participant, year: int | None = None) -> Iterator[StatementLine]:
    """Everything that happened to the entity's obligations, oldest first: emission versions, allocations,
    surrenders (one line per asset) and the assessment."""
    obligations = Obligation.objects.filter(entity=entity)
    if year is not None:
        obligations = obligations.filter(year_id=year)
    lines: list[tuple[datetime, int, StatementLine]] = []
    for emission in VerifiedEmission.objects.filter(obligation__in=obligations).select_related("obligation"):
        event = "emissions_verified" if emission.version == 1 else "emissions_corrected"
        if emission.conservative:
            event = "emissions_determined_conservatively"
        detail = f"version {emission.version}" + (f": {emission.note}" if emission.note else "")
        lines.append(
            (
                emission.created_at,
                0,
                StatementLine(
                    emission.created_at,
                    emission.obligation.year_id,
                    event,
                    "",
                    emission.quantity,
                    emission.report_reference,
                    detail,
                ),
            )
        )
    for entry in AllocationEntry.objects.filter(obligation__in=obligations).select_related("obligation"):
        if entry.outcome == AllocationOutcome.REFUSED:
            event, detail = (
                "takeback_refused",
                f"{entry.shortfall} t no longer held ({entry.available} available)",
            )
        elif entry.kind == AllocationKind.PRE_ALLOCATION:
            event, detail = "pre_allocation", f"share of {entry.basis} t verified the year before"
        else:
            event = "takeback" if entry.quantity < 0 else "true_up"
            detail = f"approved {entry.basis} t"
        lines.append(
            (
                entry.created_at,
                1,
                StatementLine(
                    entry.created_at,
                    entry.obligation.year_id,
                    event,
                    f"CEA-{entry.obligation.year_id}",
                    entry.quantity,
                    str(entry.transaction_id or ""),
                    detail,
                ),
            )
        )
    items = SurrenderItem.objects.filter(surrender__obligation__in=obligations).select_related(
        "surrender__obligation", "surrender__account", "asset"
    )
    for item in items.order_by("surrender_id", "id"):
        surrender = item.surrender
        lines.append(
            (
                surrender.created_at,
                2,
                StatementLine(
                    surrender.created_at,
                    surrender.obligation.year_id,
                    "surrender",
                    item.asset.code,
                    item.quantity,
                    str(surrender.transaction_id),
                    f"from {surrender.account.number}",
                ),
            )
        )
    for deduction in AllocationDeduction.objects.filter(obligation__in=obligations).select_related("obligation"):
        lines.append(
            (
                deduction.created_at,
                4,
                StatementLine(
                    deduction.created_at,
                    deduction.obligation.year_id,
                    "deduction_decided",
                    f"CEA-{deduction.target_year}",
                    deduction.quantity,
                    str(deduction.pk),
                    f"to be deducted from the {deduction.target_year} allocation"
                    + (f": {deduction.reason}" if deduction.reason else ""),
                ),
            )
        )
    for entry in AllocationEntry.objects.filter(obligation__in=obligations, deducted__gt=0).select_related(
        "obligation"
    ):
        lines.append(
            (
                entry.created_at,
                1,
                StatementLine(
                    entry.created_at,
                    entry.obligation.year_id,
                    "allocation_deducted",
                    f"CEA-{entry.obligation.year_id}",
                    entry.deducted,
                    str(entry.transaction_id or ""),
                    f"deducted from {entry.computed} t for the {entry.obligation.year_id - 1} shortfall",
                ),
            )
        )
    for obligation in obligations.filter(status=ObligationStatus.LATE_COMPLETE):
        assert obligation.completed_at is not None
        lines.append(
            (
                obligation.completed_at,
                5,
                StatementLine(
                    obligation.completed_at,
                    obligation.year_id,
                    "completed_late",
                    "",
                    None,
                    "",
                    "completed after the deadline",
                ),
            )
        )
    for obligation in obligations.exclude(status=ObligationStatus.OPEN):
        assert obligation.assessed_at is not None
        detail = obligation.get_status_display()
        if obligation.penalty_min_fen is not None and obligation.shortfall:
            low, high = fen_to_str(obligation.penalty_min_fen), fen_to_str(obligation.penalty_max_fen or 0)
            detail += f"; penalty {low} to {high} CNY at {fen_to_str(obligation.price_fen or 0)} per t"
        lines.append(
            (
                obligation.assessed_at,
                3,
                StatementLine(
                    obligation.assessed_at,
                    obligation.year_id,
                    f"assessed_{obligation.status}",
                    "",
                    obligation.shortfall,
                    "",
                    detail,
                ),
            )
        )
    lines.sort(key=lambda line: (line[0], line[1]))
    return (line for _, _, line in lines)
