"""Reading the compliance rules held as data: the carryover rule in force and an entity's carryover limit,
the official monthly price used for penalties.

An entity's carryover limit is computed from the trade tape in one query (net sales of the rule's vintages over
its sales window), together with what it has already carried over (its surrenders of those vintages for later
years) and whether it completed the plan's years on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connection

from exchange.models import Asset, CarryoverRule, ComplianceYear, OfficialPrice
from exchange.models.compliance import BASIS_POINTS
from exchange.selectors.prices import average_price

# Statuses that mean the year was not completed by its deadline.
LATE_STATUSES = ("short", "late_complete", "unverified")


def carryover_rule_in_force(year: int, on: date) -> CarryoverRule | None:
    """The version of plan year ``year``'s carryover rule effective on ``on``."""
    return (
        CarryoverRule.objects.filter(year=year, effective_from__lte=on).order_by("-effective_from", "-version").first()
    )


def carryover_rules_for(compliance_year: int, on: date) -> list[CarryoverRule]:
    """Every plan year's rule in force on ``on`` that limits what is surrendered for ``compliance_year``
    (plan years before it), one version per plan year."""
    rules: dict[int, CarryoverRule] = {}
    candidates = CarryoverRule.objects.filter(year__lt=compliance_year, effective_from__lte=on)
    for rule in candidates.order_by("year", "-effective_from", "-version"):
        rules.setdefault(rule.year, rule)
    return list(rules.values())


def carryover_plan_years(on: date | None = None) -> list[int]:
    """The plan years with a carryover rule in force (today unless ``on``), oldest first."""
    from django.utils import timezone

    on = on or timezone.localdate()
    return sorted(set(CarryoverRule.objects.filter(effective_from__lte=on).values_list("year", flat=True)))


@dataclass(frozen=True, slots=True)
class CarryoverLimit:
    rule: CarryoverRule
    sold: int
    bought: int
    net_sales: int
    eligible: bool
    limit: int
    used: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


CARRYOVER_SQL = """
WITH tape AS (
    SELECT COALESCE(SUM(t.quantity) FILTER (WHERE so.participant_id = %(entity)s), 0) AS sold,
           COALESCE(SUM(t.quantity) FILTER (WHERE bo.participant_id = %(entity)s), 0) AS bought
    FROM exchange_trade t
    JOIN exchange_order so ON so.id = t.sell_order_id
    JOIN exchange_order bo ON bo.id = t.buy_order_id
    JOIN exchange_asset a ON a.id = t.asset_id
    WHERE (so.participant_id = %(entity)s OR bo.participant_id = %(entity)s)
      AND a.kind = 'allowance' AND a.vintage BETWEEN %(first)s AND %(last)s
      AND t.trading_day BETWEEN %(sales_from)s AND %(sales_to)s
), used AS (
    SELECT COALESCE(SUM(si.quantity), 0) AS used
    FROM exchange_surrenderitem si
    JOIN exchange_surrender s ON s.id = si.surrender_id
    JOIN exchange_obligation o ON o.id = s.obligation_id
    JOIN exchange_asset a ON a.id = si.asset_id
    WHERE o.entity_id = %(entity)s AND o.year_id > %(last)s
      AND a.kind = 'allowance' AND a.vintage BETWEEN %(first)s AND %(last)s
), late AS (
    SELECT COUNT(*) AS late
    FROM exchange_obligation o
    WHERE o.entity_id = %(entity)s AND o.year_id IN (%(last)s, %(last)s - 1) AND o.status = ANY(%(late_statuses)s)
)
SELECT tape.sold, tape.bought, used.used, late.late FROM tape, used, late
"""


def carryover_limit(entity_id: int, rule: CarryoverRule) -> CarryoverLimit:
    """The entity's carryover limit under ``rule`` (one query): base + multiple x max(0, sold - bought) of the
    rule's vintages on the tape over its sales window; 0 when the rule requires timely compliance and the
    entity did not complete the plan year or the year before by its deadline."""
    with connection.cursor() as cursor:
        cursor.execute(
            CARRYOVER_SQL,
            {
                "entity": entity_id,
                "first": rule.first_vintage,
                "last": rule.year,
                "sales_from": rule.sales_from,
                "sales_to": rule.sales_to,
                "late_statuses": list(LATE_STATUSES),
            },
        )
        sold, bought, used, late = cursor.fetchone()
    net = max(0, int(sold) - int(bought))
    eligible = not (rule.timely_compliance_required and late)
    limit = rule.base_tonnes + net * rule.net_sales_multiple_bp // BASIS_POINTS if eligible else 0
    return CarryoverLimit(rule, int(sold), int(bought), net, eligible, limit, int(used))


def penalty_window(deadline: date) -> tuple[date, date]:
    """The month before the deadline: from the day after the same date a month earlier (clipped to the
    month's end) through the deadline itself. 2025-12-31 gives 2025-12-01..2025-12-31."""
    import calendar
    from datetime import timedelta

    year, month = (deadline.year, deadline.month - 1) if deadline.month > 1 else (deadline.year - 1, 12)
    day = min(deadline.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) + timedelta(days=1), deadline


def penalty_price(year: ComplianceYear) -> tuple[int | None, str | None]:
    """The price a year's penalties use and where it comes from: the market's official price of the penalty
    month (``official:<market>:<YYYY-MM>:v<version>``), else CEA-Y's volume-weighted average over the month
    before the deadline, else the previous close (``tape``); (None, None) without either."""
    month = penalty_month(year.deadline)
    official = official_price(year.market, month)
    if official is not None:
        return official.price_fen, f"official:{official.market}:{month:%Y-%m}:v{official.version}"
    asset = Asset.objects.filter(code=f"CEA-{year.year}").first()
    start, end = penalty_window(year.deadline)
    price = average_price(asset, start, end) if asset is not None else None
    return price, "tape" if price is not None else None


def penalty_month(deadline: date) -> date:
    """The month whose official price sets the penalty: the last calendar month ending on or before the
    deadline (deadline 2025-12-31: December 2025; 2025-12-15: November 2025). Returns its first day."""
    from datetime import timedelta

    after = deadline + timedelta(days=1)
    if after.day == 1:
        return deadline.replace(day=1)
    first = deadline.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def official_price(market: str, month: date) -> OfficialPrice | None:
    """The latest version of the official price of ``market`` for the month of ``month``."""
    return OfficialPrice.objects.filter(market=market.upper(), month=month.replace(day=1)).order_by("-version").first()
