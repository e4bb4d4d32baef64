"""The compliance rules entered by the authority as data: carryover (banking) limits per plan year and the
official monthly price of a market. Each change is a new version with its effective date and its audit event;
the rules in force are read by ``exchange.selectors.compliance_rules``. Sources: docs/compliance.md.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone

from accounts.actors import Actor
from exchange.locks import lock_rows
from exchange.models import CarryoverRule, OfficialPrice
from exchange.models.compliance import BASIS_POINTS
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.idempotency import idempotent_service
from exchange.services.obligations import InvalidRule, check_tonnes, require_registry

MAX_MULTIPLE_BP = 100 * BASIS_POINTS


def _carryover_payload(rule: CarryoverRule) -> dict[str, Any]:
    return {
        "year": rule.year,
        "base_tonnes": rule.base_tonnes,
        "net_sales_multiple_bp": rule.net_sales_multiple_bp,
        "sales_from": rule.sales_from,
        "sales_to": rule.sales_to,
        "first_vintage": rule.first_vintage,
        "enforced": rule.enforced,
        "timely_compliance_required": rule.timely_compliance_required,
        "effective_from": rule.effective_from,
        "source": rule.source,
    }


@service
@idempotent_service("carryover_rule_set")
def carryover_rule_set(
    *,
    actor: Actor,
    year: int,
    base_tonnes: int,
    net_sales_multiple_bp: int,
    sales_from: date,
    sales_to: date,
    first_vintage: int,
    effective_from: date,
    source: str,
    enforced: bool = True,
    timely_compliance_required: bool = True,
    idempotency_key: str | None = None,
) -> CarryoverRule:
    """Enter a version of a plan year's carryover limit (registry): allowances of ``first_vintage`` to ``year``
    surrendered for a later year are limited to base + multiple x the entity's net sales of them over
    [sales_from, sales_to]. The same values as the latest version change nothing."""
    require_registry(actor)
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidRule(details={"year": str(year)})
    if not isinstance(first_vintage, int) or not 2000 <= first_vintage <= year:
        raise InvalidRule(details={"first_vintage": str(first_vintage)})
    check_tonnes("base_tonnes", base_tonnes)
    if (
        not isinstance(net_sales_multiple_bp, int)
        or isinstance(net_sales_multiple_bp, bool)
        or not 0 <= net_sales_multiple_bp <= MAX_MULTIPLE_BP
    ):
        raise InvalidRule(details={"net_sales_multiple_bp": str(net_sales_multiple_bp)})
    if sales_to < sales_from:
        raise InvalidRule(details={"sales_from": sales_from, "sales_to": sales_to})
    source = (source or "").strip()
    if not source:
        raise InvalidRule(details={"source": ""})
    values = {
        "base_tonnes": base_tonnes,
        "net_sales_multiple_bp": net_sales_multiple_bp,
        "sales_from": sales_from,
        "sales_to": sales_to,
        "first_vintage": first_vintage,
        "enforced": bool(enforced),
        "timely_compliance_required": bool(timely_compliance_required),
        "effective_from": effective_from,
        "source": source[:300],
    }
    versions = lock_rows(CarryoverRule.objects.filter(year=year).order_by("-version"))
    latest = versions[0] if versions else None
    if latest is not None and all(getattr(latest, name) == value for name, value in values.items()):
        mark_unchanged()
        return latest
    rule = CarryoverRule.objects.create(
        year=year,
        version=(latest.version if latest else 0) + 1,
        actor_label=actor.label,
        created_at=timezone.now(),
        **values,
    )
    audit_record(
        actor=actor,
        action="compliance.carryover_rule_set",
        obj=rule,
        payload={
            **_carryover_payload(rule),
            "version": rule.version,
            "previous": _carryover_payload(latest) if latest else None,
        },
        at=rule.created_at,
    )
    return rule


@service
@idempotent_service("official_price_set")
def official_price_set(
    *,
    actor: Actor,
    market: str,
    month: date,
    price_fen: int,
    source: str,
    idempotency_key: str | None = None,
) -> OfficialPrice:
    """Enter the official price of a market for a month (registry, for the authority). A correction is the
    next version; the same price and source again change nothing."""
    require_registry(actor)
    market = (market or "").strip().upper()
    if not market or len(market) > 16:
        raise InvalidRule(details={"market": market})
    if not isinstance(price_fen, int) or isinstance(price_fen, bool) or not 0 < price_fen <= 10**12:
        raise InvalidRule(details={"price_fen": str(price_fen)})
    month = month.replace(day=1)
    source = (source or "").strip()
    if not source:
        raise InvalidRule(details={"source": ""})
    versions = lock_rows(OfficialPrice.objects.filter(market=market, month=month).order_by("-version"))
    latest = versions[0] if versions else None
    if latest is not None and (latest.price_fen, latest.source) == (price_fen, source[:300]):
        mark_unchanged()
        return latest
    price = OfficialPrice.objects.create(
        market=market,
        month=month,
        price_fen=price_fen,
        version=(latest.version if latest else 0) + 1,
        source=source[:300],
        actor_label=actor.label,
        created_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="compliance.official_price_set",
        obj=price,
        payload={
            "market": market,
            "month": month,
            "price_fen": price_fen,
            "version": price.version,
            "previous_fen": latest.price_fen if latest else None,
            "source": price.source,
        },
        at=price.created_at,
    )
    return price
