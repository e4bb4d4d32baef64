"""Markets and rulebook versions: install the shipped ones, publish a new version.

A rulebook version in effect is never edited (the database refuses it: ``greenledger_rulebook_frozen``); a
change of rules is a new version that starts on a day not yet begun or today, published here with an audit
event naming every changed value.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import InvalidInput, NotFound
from core.errors import translatable as _
from exchange.data import rulebooks as shipped
from exchange.engine.writer import note_rules_change
from exchange.models import Market, Rulebook, RulebookMode, TradingMode
from exchange.selectors.rulebooks import rulebook_latest
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.session_close import clear_sessions_cache
from exchange.services.sessions import parse_sessions

RULE_FIELDS = [
    f.name
    for f in Rulebook._meta.concrete_fields
    if f.name not in ("id", "market", "version", "effective_from", "created_at", "created_by")
]


class MarketNotFound(NotFound):
    code = "market_not_found"
    default_message = _("No market has this code.")


MODE_FIELDS = ["mode", "sessions", "band_bp", "min_quantity", "max_quantity", "buyer_fee_bp", "seller_fee_bp"]


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def rulebook_payload(book: Rulebook) -> dict[str, Any]:
    """A version's rules as plain data (audit payloads, the API)."""
    data = {name: _json(getattr(book, name)) for name in RULE_FIELDS}
    data["modes"] = [{name: getattr(m, name) for name in MODE_FIELDS} for m in book.modes.all()]
    return data


@service
def markets_install(*, actor: Actor | None = None) -> list[Rulebook]:
    """Create the shipped markets and first rulebooks where missing (migration 0120 does it on a new
    database; the demo and tests call this after a flush). Safe to run twice."""
    actor = actor or Actor.system("markets")
    created = shipped.install(apps, created_by=actor.label)
    if not created:
        mark_unchanged()
        return []
    for book in created:
        note_rules_change(market=book.market)
        audit_record(
            actor=actor,
            action="market.rulebook_install",
            obj=book,
            payload={"market": book.market.code, "version": book.version, **rulebook_payload(book)},
        )
    return created


def _check_modes(modes: list[dict[str, Any]]) -> None:
    seen = set()
    for mode in modes:
        unknown = set(mode) - set(MODE_FIELDS)
        if unknown or mode.get("mode") not in TradingMode.values or mode["mode"] in seen:
            raise InvalidInput(
                gettext("Each mode names a trading mode once, with known fields."), details={"mode": mode}
            )
        seen.add(mode["mode"])
        try:
            sessions = parse_sessions(mode.get("sessions", "09:30-11:30,13:00-15:00"))
        except ValueError:
            raise InvalidInput(gettext("Sessions look like 09:30-11:30,13:00-15:00."), details={"mode": mode}) from None
        if any(start >= end for start, end in sessions):
            raise InvalidInput(gettext("Each session ends after it starts."), details={"mode": mode})


@service
def rulebook_publish(
    *,
    actor: Actor,
    market: Market,
    effective_from: date,
    changes: dict[str, Any] | None = None,
    modes: list[dict[str, Any]] | None = None,
) -> Rulebook:
    """Publish a new version of a market's rulebook (exchange or registry staff): the latest version with
    ``changes`` applied and, if given, ``modes`` in place of its modes. It starts on ``effective_from``: today
    or later, and after every earlier version's start."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.EXCHANGE, ParticipantKind.REGISTRY)
    changes = dict(changes or {})
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise InvalidInput(
            gettext("Unknown rules: %(rules)s.") % {"rules": sorted(unknown)}, details={"unknown": sorted(unknown)}
        )
    latest = rulebook_latest(market)
    today = clock.trading_day()
    if effective_from < today or (latest is not None and effective_from <= latest.effective_from):
        raise InvalidInput(
            gettext("A new version starts today or later, after the latest version's start."),
            details={"effective_from": effective_from.isoformat()},
        )
    base = model_to_dict(latest, fields=RULE_FIELDS) if latest else {}
    new_modes = (
        modes
        if modes is not None
        else ([{name: getattr(m, name) for name in MODE_FIELDS} for m in latest.modes.all()] if latest else [])
    )
    _check_modes(new_modes)
    fields = {**base, **changes}
    book = Rulebook(
        market=market,
        version=(latest.version + 1) if latest else 1,
        effective_from=effective_from,
        created_by=actor.label,
        **fields,
    )
    try:
        book.full_clean(exclude=["market"], validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput(gettext("Some rules are invalid."), details={"rules": exc.message_dict}) from None
    book.save(force_insert=True)
    RulebookMode.objects.bulk_create([RulebookMode(rulebook=book, **m) for m in new_modes])
    before = rulebook_payload(latest) if latest else {}
    after = rulebook_payload(book)
    diff = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    transaction.on_commit(clear_sessions_cache)
    note_rules_change(market=market)  # the engines owning its books decide their next batch by this version
    audit_record(
        actor=actor,
        action="market.rulebook_publish",
        obj=book,
        payload={
            "market": market.code,
            "version": book.version,
            "effective_from": effective_from.isoformat(),
            "changes": diff,
        },
    )
    return book


__all__ = ["MarketNotFound", "markets_install", "rulebook_payload", "rulebook_publish"]
