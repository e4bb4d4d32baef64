"""Reading pledges: who sees which, the lender's loan book, the registry's pledge register, collateral prices.

Visibility: the borrower sees its own pledges, the lender the pledges addressed to it, and the registry,
the exchange and auditors every pledge. Anyone else's pledge is answered exactly like an unknown one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.actors import Actor
from accounts.models import Participant
from core.errors import NotFound
from core.errors import translatable as _
from exchange.models import (
    REGISTERED_STATES,
    Asset,
    DailyPrice,
    MarketRules,
    PledgeEnforcement,
    PledgeLoan,
    PledgeStatus,
    PledgeValuation,
    PriceSource,
)


class PledgeNotFound(NotFound):
    code = "pledge_not_found"
    default_message = _("No such pledge, or not yours.")


class LtvBand:
    """LTV bands relative to each loan's own levels (the loan book's ``ltv_band`` filter)."""

    HEALTHY = "healthy"  # below the margin-call level
    MARGIN_CALL = "margin_call"  # at or above the margin-call level, below the liquidation level
    LIQUIDATION = "liquidation"  # at or above the liquidation level
    CHOICES = [
        (HEALTHY, _("Below the margin-call level")),
        (MARGIN_CALL, _("At or above the margin-call level")),
        (LIQUIDATION, _("At or above the liquidation level")),
    ]


@dataclass(frozen=True, slots=True)
class Price:
    fen: int
    day: date | None
    source: str


def collateral_price(asset: Asset, day: date) -> Price | None:
    """The close of ``day`` or the latest before it; else the listing's reference price; else None."""
    row = DailyPrice.objects.filter(asset=asset, day__lte=day).order_by("-day").values_list("close_fen", "day").first()
    if row is not None:
        return Price(fen=row[0], day=row[1], source=PriceSource.CLOSE)
    reference = MarketRules.objects.filter(asset=asset).values_list("reference_price_fen", flat=True).first()
    if reference is None:
        return None
    return Price(fen=reference, day=None, source=PriceSource.REFERENCE)


def _with_relations(queryset: QuerySet[PledgeLoan]) -> QuerySet[PledgeLoan]:
    return queryset.select_related(
        "borrower", "lender", "account", "lender_account", "asset", "margin_call"
    ).prefetch_related("collateral__hold", "enforcements", "margin_calls")


def pledges_visible_to(actor: Actor) -> QuerySet[PledgeLoan]:
    queryset = _with_relations(PledgeLoan.objects.order_by("-id"))
    if actor.sees_everything:
        return queryset
    if actor.participant_id is None:
        return queryset.none()
    return queryset.filter(Q(borrower_id=actor.participant_id) | Q(lender_id=actor.participant_id))


def pledge_by_pk(pk: int) -> PledgeLoan:
    """One pledge with what its representation needs (no visibility check: the caller has made it)."""
    return _with_relations(PledgeLoan.objects.filter(pk=pk)).get()


def pledge_visible(actor: Actor, pk: int) -> PledgeLoan:
    loan = pledges_visible_to(actor).filter(pk=pk).first()
    if loan is None:
        raise PledgeNotFound(details={"pledge": pk})
    return loan


def loan_book(actor: Actor) -> QuerySet[PledgeLoan]:
    """The lender's loans: every pledge addressed to the actor's participant, newest first."""
    return _with_relations(PledgeLoan.objects.filter(lender_id=actor.participant_id).order_by("-id"))


def registered_pledges() -> QuerySet[PledgeLoan]:
    """Every pledge the registry has registered (current and past), newest registration first."""
    return _with_relations(PledgeLoan.objects.filter(status__in=REGISTERED_STATES).order_by("-id"))


def in_ltv_band(queryset: QuerySet[PledgeLoan], band: str) -> QuerySet[PledgeLoan]:
    if band == LtvBand.HEALTHY:
        return queryset.filter(ltv_bp__lt=F("margin_call_bp"))
    if band == LtvBand.MARGIN_CALL:
        return queryset.filter(ltv_bp__gte=F("margin_call_bp"), ltv_bp__lt=F("liquidation_bp"))
    if band == LtvBand.LIQUIDATION:
        return queryset.filter(ltv_bp__gte=F("liquidation_bp"))
    raise ValueError(band)


def valuations_of(loan: PledgeLoan) -> QuerySet[PledgeValuation]:
    return PledgeValuation.objects.filter(loan=loan).select_related("margin_call").order_by("-day")


OPEN_LOAN_STATES = (PledgeStatus.REGISTERED, PledgeStatus.DEFAULTED)


@dataclass(frozen=True, slots=True)
class Exposure:
    """A lender's exposure summed over its open pledge loans (registered or in default)."""

    lender_id: int
    lender: str
    loans: int
    principal_fen: int
    collateral_value_fen: int
    cash_collateral_fen: int
    margin_calls_open: int
    defaulted: int
    received_on_enforcement_fen: int

    @property
    def ltv_bp(self) -> int | None:
        """Summed principal over summed collateral value, basis points rounded up."""
        if not self.collateral_value_fen:
            return None
        return -(-self.principal_fen * 10_000 // self.collateral_value_fen)


def exposures(lender_id: int | None = None) -> list[Exposure]:
    """Each lender's exposure (one lender's if given), largest principal first: one grouped query."""
    open_loans = Q(pledges_taken__status__in=OPEN_LOAN_STATES)
    rows = (
        Participant.objects.filter(pledges_taken__isnull=False)
        .filter(**({"pk": lender_id} if lender_id is not None else {}))
        .annotate(
            loans=Count("pledges_taken", filter=open_loans, distinct=True),
            principal=Coalesce(Sum("pledges_taken__principal_fen", filter=open_loans), 0),
            value=Coalesce(Sum("pledges_taken__collateral_value_fen", filter=open_loans), 0),
            cash=Coalesce(Sum("pledges_taken__cash_collateral_fen", filter=open_loans), 0),
            calls=Count("pledges_taken", filter=open_loans & Q(pledges_taken__margin_call__isnull=False)),
            defaulted=Count("pledges_taken", filter=Q(pledges_taken__status=PledgeStatus.DEFAULTED)),
        )
        .values_list("pk", "name", "loans", "principal", "value", "cash", "calls", "defaulted")
        .distinct()
    )
    received: dict[int, int] = {}
    for enforcement in PledgeEnforcement.objects.filter(
        **({"loan__lender_id": lender_id} if lender_id is not None else {})
    ).select_related("loan"):
        received[enforcement.loan.lender_id] = (
            received.get(enforcement.loan.lender_id, 0) + enforcement.received_by_lender_fen
        )
    found = [
        Exposure(pk, name, loans, principal, value, cash, calls, defaulted, received.get(pk, 0))
        for pk, name, loans, principal, value, cash, calls, defaulted in rows
    ]
    return sorted(found, key=lambda e: (-e.principal_fen, e.lender_id))
