"""Listing an instrument for trading, and what is per instrument (listed or not, the reference price): the exchange
operator's operations, each audited. Every other rule is its market's rulebook's (``exchange.services.markets``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core.errors import InvalidInput
from core.limits import MAX_PRICE_FEN
from core.money import fen_to_str
from exchange.engine.writer import note_rules_change
from exchange.errors import DuplicateObject
from exchange.models import Asset, AssetKind, MarketRules
from exchange.services.audit import audit_record, mark_unchanged, service

# What is per instrument; every other rule is its market's rulebook's (exchange.models.markets).
RULE_FIELDS = ("tradable",)


@service
def asset_list(*, actor: Actor, asset: Asset, reference_price_fen: int, **rules: Any) -> MarketRules:
    """List an allowance or CCER asset for trading (exchange operator) with its reference price; it trades
    under its market's rulebook (``Asset.market``)."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.EXCHANGE)
    if asset.kind not in (AssetKind.ALLOWANCE, AssetKind.CCER):
        raise InvalidInput(gettext("Only allowances and CCER are traded."), details={"asset": asset.code})
    unknown = set(rules) - set(RULE_FIELDS)
    if unknown:
        raise InvalidInput(gettext("Unknown rules: %(rules)s.") % {"rules": sorted(unknown)})
    if MarketRules.objects.filter(asset=asset).exists():
        raise DuplicateObject(
            gettext("%(asset)s is listed already.") % {"asset": asset.code}, details={"asset": asset.code}
        )
    if not 0 < reference_price_fen <= MAX_PRICE_FEN:
        raise InvalidInput(
            gettext("A reference price is positive and at most %(max)s.") % {"max": fen_to_str(MAX_PRICE_FEN)},
            details={"reference_price": fen_to_str(reference_price_fen)},
        )
    if asset.market_id is None:
        raise InvalidInput(gettext("The asset belongs to no market."), details={"asset": asset.code})
    listed = MarketRules.objects.create(asset=asset, reference_price_fen=reference_price_fen, **rules)
    audit_record(
        actor=actor,
        action="market.list",
        obj=asset,
        payload={
            "asset": asset.code,
            "market": asset.market.code if asset.market else "",
            "reference_price": fen_to_str(reference_price_fen),
            **_rules_payload(listed),
        },
    )
    return listed


def _rules_payload(rules: MarketRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in RULE_FIELDS}


@service
def market_rules_update(*, actor: Actor, rules: MarketRules, **changes: Any) -> MarketRules:
    """Change what is per instrument (listed or not, reference price; exchange operator), audited. The
    market-wide rules change by a new rulebook version (``exchange.services.markets.rulebook_publish``)."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.EXCHANGE)
    unknown = set(changes) - set(RULE_FIELDS) - {"reference_price_fen"}
    if unknown:
        raise InvalidInput(
            gettext("Unknown rules: %(rules)s; market-wide rules are the rulebook's.") % {"rules": sorted(unknown)},
            details={"unknown": sorted(unknown)},
        )
    before = _rules_payload(rules) | {"reference_price_fen": rules.reference_price_fen}
    diff = {k: [before[k], v] for k, v in changes.items() if before.get(k) != v}
    if not diff:
        mark_unchanged()
        return rules
    MarketRules.objects.filter(pk=rules.pk).update(**{k: v[1] for k, v in diff.items()})
    for key, (_before, value) in diff.items():
        setattr(rules, key, value)
    note_rules_change(asset_ids=[rules.asset_id])
    audit_record(actor=actor, action="market.rules_update", obj=rules.asset, payload={"changes": diff})
    return rules
