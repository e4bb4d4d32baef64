"""The session close: open orders end when their session has ended, per instrument and its own sessions.

An order's session is its trading day's rulebook's, by its trading mode (and, in the continuous book, its size
class); what unsettled trades still need stays held (``orders.end_orders``). The one-way auction's orders end
at the auction's close instead (``auctions.py``).
"""

from __future__ import annotations

import json
import time as time_module
from datetime import date, datetime

from django.db import connection

from accounts.actors import Actor
from core import clock
from core.errors import NotFound
from exchange.locks import lock_book
from exchange.models import Asset, MarketRules, Order, OrderMode, OrderStatus, TradingMode
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.instrument_rules import InstrumentRules
from exchange.services.orders import CONTINUOUS, end_orders
from exchange.services.sessions import Sessions, session_ended


@service
def orders_cancel_at_close(*, actor: Actor | None = None) -> int:
    """Cancel the open orders whose session has ended, per asset and its own sessions; return how many.

    Run every minute. An order placed in the 09:30-11:30 session is cancelled once 11:30 has passed; one of
    an asset trading 00:00-24:00, when its trading day changes. With nothing to cancel it is one query: the
    oldest open order of each asset (its session ends first). Safe to run twice.
    """
    actor = actor or Actor.system("session-close")
    moment = clock.now()
    # Sessions per (asset, trading day, order mode), read once per run.
    cache: dict[tuple[int, date, str], Sessions] = {}
    due = []
    for asset_id, placed, trading_days, calendar_code, modes in _oldest_open_orders():
        for order_mode, mode_name in (
            (OrderMode.LISTING, TradingMode.CONTINUOUS),
            (OrderMode.BLOCK, TradingMode.BLOCK),
        ):
            enabled = TradingMode.CONTINUOUS in modes
            sessions = Sessions(modes.get(mode_name, "") if enabled else "", trading_days or "", calendar_code or "CN")
            cache[(asset_id, clock.trading_day(placed), order_mode)] = sessions
        if any(
            session_ended(cache[(asset_id, clock.trading_day(placed), m)], placed, moment)
            for m in (OrderMode.LISTING, OrderMode.BLOCK)
        ):
            due.append(asset_id)
    if not due:
        mark_unchanged()
        return 0
    for asset_id in due:
        lock_book(asset_id)
    orders = [
        order
        for order in Order.objects.filter(status=OrderStatus.OPEN, asset_id__in=due)
        .exclude(trading_mode=TradingMode.AUCTION)
        .select_related("hold")
        .order_by("id")
        if session_ended(
            _order_sessions(order.asset_id, order.created_at, session_kind(order), cache), order.created_at, moment
        )
    ]
    if not orders:
        mark_unchanged()
        return 0
    end_orders(orders, "session_close", moment)
    per_asset: dict[int, int] = {}
    for order in orders:
        per_asset[order.asset_id] = per_asset.get(order.asset_id, 0) + 1
    audit_record(
        actor=actor,
        action="order.cancel_at_close",
        obj=("session", clock.trading_day(moment).isoformat()),
        payload={
            "orders": len(orders),
            "per_asset": {str(k): v for k, v in per_asset.items()},
            "first": orders[0].pk,
            "last": orders[-1].pk,
        },
        at=moment,
    )
    return len(orders)


_sessions_cache: dict[tuple[int, date, str], tuple[float, Sessions]] = {}
SESSIONS_CACHE_SECONDS = 60.0


def session_kind(order: Order) -> str:
    """What an open order's session is, by its trading mode and (in the continuous book) its size class:
    ``continuous``, ``continuous-block``, ``listing`` or ``block``."""
    if order.trading_mode == CONTINUOUS:
        return "continuous-block" if order.mode == OrderMode.BLOCK else "continuous"
    return order.trading_mode


def _oldest_open_orders() -> list[tuple[int, datetime, str | None, str | None, dict[str, str]]]:
    """Per instrument with open orders: its oldest open order's time, and the rulebook of that order's trading
    day (trading days, calendar, each mode's sessions), in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT o.asset_id, o.oldest, r.trading_days, r.calendar_code,
                   COALESCE(jsonb_object_agg(m.mode, m.sessions) FILTER (WHERE m.mode IS NOT NULL), '{}'::jsonb)
              FROM (SELECT asset_id, min(created_at) AS oldest FROM exchange_order
                     WHERE status = 'open' AND trading_mode <> 'auction' GROUP BY asset_id) o
              JOIN exchange_asset a ON a.id = o.asset_id
              LEFT JOIN LATERAL (
                    SELECT r.id, r.trading_days, r.calendar_code FROM exchange_rulebook r
                     WHERE r.market_id = a.market_id
                       AND r.effective_from <= (o.oldest AT TIME ZONE 'Asia/Shanghai')::date
                     ORDER BY r.effective_from DESC, r.version DESC LIMIT 1) r ON true
              LEFT JOIN exchange_rulebookmode m ON m.rulebook_id = r.id
             GROUP BY o.asset_id, o.oldest, r.trading_days, r.calendar_code
             ORDER BY o.asset_id
            """
        )
        rows = cursor.fetchall()
    return [(a, t, d, c, m if isinstance(m, dict) else json.loads(m)) for a, t, d, c, m in rows]


def clear_sessions_cache() -> None:
    """Forget the sessions read for the close job (a rulebook version was published, or a test starts)."""
    _sessions_cache.clear()


def _order_sessions(
    asset_id: int, placed: datetime, kind: str, cache: dict[tuple[int, date, str], Sessions]
) -> Sessions:
    """The sessions an order of session ``kind`` placed at ``placed`` trades in (its trading day's rulebook); none when
    the rulebook no longer enables its mode (the order has no session left). Versions in effect never change,
    so what was read is kept for a minute (a version published for today is seen within it)."""
    day = clock.trading_day(placed)
    key = (asset_id, day, kind)
    if key in cache:
        return cache[key]
    kept = _sessions_cache.get(key)
    if kept is not None and time_module.monotonic() - kept[0] < SESSIONS_CACHE_SECONDS:
        cache[key] = kept[1]
        return kept[1]
    asset = Asset.objects.get(pk=asset_id)
    try:
        rulebook = rulebook_for(asset, day)
    except NotFound:
        found = Sessions("")
    else:
        rules = InstrumentRules(listing=MarketRules(asset_id=asset_id, reference_price_fen=1), rulebook=rulebook)
        if kind.startswith("continuous"):
            found = rules.sessions(OrderMode.BLOCK if kind == "continuous-block" else OrderMode.LISTING)
        else:
            found = rules.mode_sessions(kind)
    cache[key] = found
    _sessions_cache[key] = (time_module.monotonic(), found)
    return found
