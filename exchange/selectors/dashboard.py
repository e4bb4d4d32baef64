"""The admin dashboard at a glance: the market, supply by state, open pledges by LTV band, compliance.

Every figure is an aggregate in the database: the number of queries is fixed (about ten), whatever the
number of assets, trades, blocks or pledges. Nothing here loops over rows with a query per row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Case, CharField, Count, F, Q, Sum, Value, When

from core import clock
from exchange.models import (
    ApprovalRequest,
    ApprovalStatus,
    ComplianceYear,
    DailyPrice,
    MarketRules,
    PledgeLoan,
    PledgeStatus,
    SerialBlock,
    Trade,
)
from exchange.selectors.compliance import YearSummary, year_summary
from exchange.selectors.pledges import LtvBand

CHART_DAYS = 30
SUPPLY_STATES = ("available", "held", "frozen", "retired", "cancelled", "surrendered")
OPEN_PLEDGE_STATES = (PledgeStatus.REGISTERED, PledgeStatus.DEFAULTED)


@dataclass
class AssetMarket:
    code: str
    name: str
    last_close_fen: int | None = None
    last_close_day: date | None = None
    previous_close_fen: int | None = None
    today_volume: int = 0
    today_turnover_fen: int = 0
    today_trades: int = 0
    unsettled_trades: int = 0
    history: list[tuple[date, int, int]] = field(default_factory=list)  # day, close (fen), volume

    @property
    def change_bp(self) -> int | None:
        if self.last_close_fen is None or not self.previous_close_fen:
            return None
        return (self.last_close_fen - self.previous_close_fen) * 10_000 // self.previous_close_fen

    @property
    def today_vwap_fen(self) -> int | None:
        if not self.today_volume:
            return None
        return (2 * self.today_turnover_fen + self.today_volume) // (2 * self.today_volume)


@dataclass(frozen=True, slots=True)
class Supply:
    code: str
    by_state: dict[str, int]

    @property
    def issued(self) -> int:
        return sum(self.by_state.values())

    @property
    def cells(self) -> list[int]:
        return [self.by_state.get(state, 0) for state in SUPPLY_STATES]


@dataclass(frozen=True, slots=True)
class PledgeBand:
    band: str
    label: str
    loans: int
    quantity: int
    principal_fen: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    today: date
    market: list[AssetMarket]
    supply: list[Supply]
    pledges: list[PledgeBand]
    compliance: YearSummary | None
    compliance_year: ComplianceYear | None
    pending_approvals: int

    @property
    def unsettled_trades(self) -> int:
        return sum(a.unsettled_trades for a in self.market)


def market_overview(today: date, days: int = CHART_DAYS) -> list[AssetMarket]:
    """Listed assets with their closes of the last ``days`` days and today's trading (three queries)."""
    markets = {
        rules.asset_id: AssetMarket(code=rules.asset.code, name=rules.asset.name)
        for rules in MarketRules.objects.select_related("asset").order_by("asset__code")
    }
    closes = DailyPrice.objects.filter(asset_id__in=markets, day__gte=today - timedelta(days=days)).order_by("day")
    for asset_id, day, close, volume in closes.values_list("asset_id", "day", "close_fen", "volume"):
        markets[asset_id].history.append((day, close, volume))
    for market in markets.values():
        if market.history:
            market.last_close_day, market.last_close_fen = market.history[-1][0], market.history[-1][1]
        if len(market.history) > 1:
            market.previous_close_fen = market.history[-2][1]
    trading = (
        Trade.objects.filter(asset_id__in=markets)
        .filter(Q(trading_day=today) | Q(settlement_batch__isnull=True))
        .values("asset_id")
        .annotate(
            volume=Sum("quantity", filter=Q(trading_day=today)),
            turnover=Sum("turnover_fen", filter=Q(trading_day=today)),
            trades=Count("id", filter=Q(trading_day=today)),
            unsettled=Count("id", filter=Q(settlement_batch__isnull=True)),
        )
    )
    for row in trading:
        market = markets[row["asset_id"]]
        market.today_volume = row["volume"] or 0
        market.today_turnover_fen = row["turnover"] or 0
        market.today_trades = row["trades"]
        market.unsettled_trades = row["unsettled"]
    return list(markets.values())


def supply_by_state() -> list[Supply]:
    """Units of each serialised asset by block state (one grouped query over the serial blocks)."""
    rows = (
        SerialBlock.objects.values("asset__code", "state")
        .annotate(units=Sum(F("last") - F("first") + 1))
        .order_by("asset__code", "state")
    )
    states: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        states[row["asset__code"]][row["state"]] = row["units"]
    return [Supply(code=code, by_state=by_state) for code, by_state in states.items()]


def open_pledges_by_band() -> list[PledgeBand]:
    """Registered and defaulted pledges by LTV band, relative to each loan's own levels (one query)."""
    band = Case(
        When(ltv_bp__gte=F("liquidation_bp"), then=Value(LtvBand.LIQUIDATION)),
        When(ltv_bp__gte=F("margin_call_bp"), then=Value(LtvBand.MARGIN_CALL)),
        default=Value(LtvBand.HEALTHY),
        output_field=CharField(),
    )
    rows = {
        row["band"]: row
        for row in PledgeLoan.objects.filter(status__in=OPEN_PLEDGE_STATES)
        .annotate(band=band)
        .values("band")
        .annotate(loans=Count("id"), quantity=Sum("quantity"), principal=Sum("principal_fen"))
        .order_by()
    }
    return [
        PledgeBand(
            band=key,
            label=label,
            loans=rows.get(key, {}).get("loans", 0),
            quantity=rows.get(key, {}).get("quantity") or 0,
            principal_fen=rows.get(key, {}).get("principal") or 0,
        )
        for key, label in LtvBand.CHOICES
    ]


def current_compliance_year(today: date) -> ComplianceYear | None:
    """The earliest year still open (not yet assessed), else the latest year."""
    return (
        ComplianceYear.objects.filter(closed_at__isnull=True).order_by("year").first()
        or ComplianceYear.objects.order_by("-year").first()
    )


def dashboard() -> Dashboard:
    today = clock.trading_day()
    year = current_compliance_year(today)
    return Dashboard(
        today=today,
        market=market_overview(today),
        supply=supply_by_state(),
        pledges=open_pledges_by_band(),
        compliance=year_summary(year) if year is not None else None,
        compliance_year=year,
        pending_approvals=ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).count(),
    )
