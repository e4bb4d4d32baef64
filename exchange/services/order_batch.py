"""Orders placed in batches: the matching engine's write path, with ``order_place``'s rules.

The engine (``exchange.engine``) owns a book and applies its orders in arrival order inside one transaction. For
each order it asks ``OrderBatch.place``: the same checks as ``order_place`` (``check_order``, ``decide_order``,
``position_check``, the hold's arithmetic, in ``instrument_rules.py``; the client order id, in ``orders.py``),
decided from facts read once per batch (the instrument's rules and previous close, the accounts, the locked
balances, positions, client order ids taken) and kept current in memory as the batch's orders reserve. A
refused order raises before it changes anything, so it needs no savepoint. Matching reads the engine's book
(``orders._match``).

``flush`` writes what the accepted orders did in one statement, ``greenledger_order_batch`` (``exchange/sql``),
which takes each table's rows as arrays, one per column: the holds, the balances they reserve from, the orders,
the trades, the resting orders' fills, and one audit event per order (numbered and hashed as
``audit_records`` would); the serial book then moves the held units' blocks. Anything the batch can't decide from
its facts (a buy that needs proceeds advanced, a cancel) is left to the caller: it flushes the batch, then runs
the ordinary service, after which the batch reads its facts again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection, models
from django.utils import timezone

from accounts.actors import Actor
from core import clock
from core.db import pipeline
from exchange.locks import AUDIT_LOCK_KEY, LockedBalance, lock_balances
from exchange.models import Account, Asset, BlockState, Hold, HoldKind, Order, Side, Trade
from exchange.selectors.prices import previous_close
from exchange.selectors.risk import position_limit, position_of
from exchange.services.audit import AUDIT_ARRAY_TYPES, audit_arrays, note_recorded
from exchange.services.balances import balance_rows, insufficient_available
from exchange.services.cash import cash_asset
from exchange.services.fills import trades_of
from exchange.services.instrument_rules import (
    InstrumentRules,
    NotTradable,
    check_order,
    decide_order,
    instrument_rules,
    position_check,
)
from exchange.services.orders import DuplicateClientOrderId, _match, new_order, place_payload
from exchange.services.serial_book import BlockMove, SerialBook

#: How long a batch may decide from an instrument's rules and previous close read by an earlier batch. Versions
#: of a rulebook in effect never change and the close is the previous day's. A version published or a listing
#: changed (``market_rules_update``) reaches the next batch at once: both advance the book's ``foreign_writes``
#: (``engine.writer.note_rules_change``), which the engine reads under the book lock at the start of every batch
#: and which makes it read the rules again. This bound is for what changes without such a note.
RULES_SECONDS = 1.0


@dataclass
class KnownRules:
    day: date
    read_at: float
    rules: InstrumentRules
    reference_fen: int


class NeedsService(Exception):
    """The batch can't decide this order from its facts; the caller applies it with ``order_place``."""


@dataclass
class _Accepted:
    actor: Actor
    account: Account
    asset: Asset
    order: Order
    hold: Hold
    fills: list[tuple[Order, int, int, int, int]]


class OrderBatch:
    """One transaction's orders on books its caller owns (the book locks taken, the books active)."""

    def __init__(self, assets: dict[int, Asset], known: dict[int, KnownRules] | None = None) -> None:
        self.assets = assets
        # The rules and previous close per instrument: the caller's, while fresh (``RULES_SECONDS``).
        self.known: dict[int, KnownRules] = known if known is not None else {}
        self.rules: dict[int, tuple[InstrumentRules, int]] = {}
        self.unlisted: dict[int, NotTradable] = {}
        self.cash: Asset | None = None
        self._reset_facts()
        self.accepted: list[_Accepted] = []
        self.latest: dict[int, Order] = {}  # order id -> its state after the batch so far (new and resting)
        self.new_ids: set[int] = set()
        self.ids: list[tuple[int, int]] = []
        self.trade_ids: list[int] = []

    def _reset_facts(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.balances: dict[tuple[int, int], LockedBalance] = {}
        self.positions: dict[tuple[int, int], tuple[int | None, int]] = {}
        self.client_ids: dict[tuple[int, str], int] = {}
        self.facts_read = False

    # --- facts, read once per batch ---------------------------------------------------------------------
    def read_facts(self, requests: list[dict[str, Any]]) -> None:
        """Everything the batch's orders are decided from, in a few statements: rules and previous close per
        instrument, the accounts, their balances locked (the book locks are held already: the lock order), the
        client order ids taken."""
        moment = clock.now()
        day = clock.trading_day(moment)
        for asset_id, asset in self.assets.items():
            if asset_id not in self.rules and asset_id not in self.unlisted:
                known = self.known.get(asset_id)
                if known is None or known.day != day or time.monotonic() - known.read_at >= RULES_SECONDS:
                    try:
                        rules = instrument_rules(asset, day)
                    except NotTradable as exc:  # delisted while the engine owns the book: its orders are refused
                        self.known.pop(asset_id, None)
                        self.unlisted[asset_id] = exc
                        continue
                    known = self.known[asset_id] = KnownRules(
                        day, time.monotonic(), rules, previous_close(asset, day, rules)
                    )
                self.rules[asset_id] = (known.rules, known.reference_fen)
        places = [r for r in requests if r["op"] == "place"]
        cash = self.cash = self.cash or cash_asset()
        keys = set()
        for r in places:
            account_id = int(r["args"]["account"])
            keys.add((account_id, cash.pk if r["args"]["side"] == Side.BUY else int(r["asset"])))
        wanted = {(r["actor"].get("participant_id"), r["args"]["client_order_id"]) for r in places}
        participants = sorted({p for p, _ in wanted if p is not None})
        count = len(places)
        # The reads go out together and are answered in one round trip: the accounts, the client order ids taken,
        # the ids of the orders, their holds and (one each; more drawn at the flush if needed) their trades, drawn
        # up front so that the flush's inserts return nothing and wait for nothing; the balances' locks last.
        with pipeline():
            accounts = _send(
                f"SELECT {_columns(Account)} FROM {Account._meta.db_table} WHERE id = ANY(%s::bigint[])",
                [sorted({int(r["args"]["account"]) for r in places})],
            )
            taken = _send(
                f"SELECT id, participant_id, client_order_id FROM {Order._meta.db_table}"
                " WHERE participant_id = ANY(%s::bigint[]) AND client_order_id = ANY(%s::text[])",
                [participants, sorted({c for _, c in wanted})],
            )
            drawn = _send(
                "SELECT nextval(pg_get_serial_sequence('exchange_order', 'id')),"
                " nextval(pg_get_serial_sequence('exchange_hold', 'id')),"
                " nextval(pg_get_serial_sequence('exchange_trade', 'id')) FROM generate_series(1, %s)",
                [count],
            )
            self.balances = lock_balances(keys)
            names = [f.attname for f in Account._meta.concrete_fields]
            found = [Account.from_db(connection.alias, names, row) for row in _answer(accounts)]
            self.accounts = {account.pk: account for account in found}
            for pk, participant_id, client_order_id in _answer(taken):
                self.client_ids[(participant_id, client_order_id)] = pk
            ids = _answer(drawn)
        self.ids = [(order_id, hold_id) for order_id, hold_id, _ in ids]
        self.trade_ids = [trade_id for _, _, trade_id in ids]
        self.facts_read = True

    def _position(self, participant_id: int, asset: Asset, rules: InstrumentRules) -> tuple[int | None, int]:
        key = (participant_id, asset.pk)
        if key not in self.positions:
            limit = position_limit(participant_id, asset, rules.rulebook)
            self.positions[key] = (limit, position_of(participant_id, asset) if limit is not None else 0)
        return self.positions[key]

    # --- one order ------------------------------------------------------------------------------------------
    def place(self, actor: Actor, asset: Asset, args: dict[str, Any]) -> _Accepted:
        """Decide and match one order (``DomainError``: refused, nothing changed; ``NeedsService``: apply it with
        ``order_place`` after ``flush``); its writes wait for ``flush``."""
        account = self.accounts.get(int(args["account"]))
        if account is None:
            raise NeedsService  # order_place answers it as the API would
        side, mode, price_fen, quantity = args["side"], args["mode"], args["price_fen"], args["quantity"]
        client_order_id = args["client_order_id"]
        if asset.pk in self.unlisted:
            raise self.unlisted[asset.pk]
        check_order(actor, account, side, mode, client_order_id)
        participant_id = actor.member_participant_id
        taken = self.client_ids.get((participant_id, client_order_id))
        if taken is not None:
            raise DuplicateClientOrderId(details={"client_order_id": client_order_id, "order": taken})
        moment = clock.now()
        rules, reference = self.rules[asset.pk]
        reserve = decide_order(actor, rules, reference, side, mode, price_fen, quantity, moment)
        if side == Side.BUY and account.participant_id is not None:
            limit, position = self._position(account.participant_id, asset, rules)
            position_check(rules.rulebook, limit, position, quantity)
        held_asset = (self.cash or cash_asset()) if side == Side.BUY else asset
        key = (account.pk, held_asset.pk)
        balance = self.balances.get(key)
        if balance is None:
            raise NeedsService
        if balance.available < reserve:
            if side == Side.BUY:
                raise NeedsService  # proceeds of unsettled sales may cover it (buy_hold_place)
            raise insufficient_available(account, held_asset, balance.available, reserve)
        if not self.ids:
            raise NeedsService
        order_id, hold_id = self.ids.pop(0)
        # Decided: from here nothing refuses the order.
        balance.held += reserve
        if side == Side.BUY and account.participant_id is not None:
            limit, position = self.positions[(account.participant_id, asset.pk)]
            self.positions[(account.participant_id, asset.pk)] = (limit, position + quantity)
        self.client_ids[(participant_id, client_order_id)] = order_id
        hold = Hold(
            pk=hold_id,
            account=account,
            asset=held_asset,
            kind=HoldKind.ORDER,
            reference=f"order:{participant_id}:{client_order_id}",
            quantity=reserve,
            remaining=reserve,
            created_at=timezone.now(),
        )
        order = new_order(
            participant_id, account, asset, side, mode, price_fen, quantity, client_order_id, hold, moment, pk=order_id
        )
        fills, touched = _match(order, rules)
        for resting in touched:
            self.latest[resting.pk] = resting
        self.latest[order.pk] = order
        self.new_ids.add(order.pk)
        accepted = _Accepted(actor, account, asset, order, hold, fills)
        self.accepted.append(accepted)
        return accepted

    def _trade_ids(self, count: int) -> list[int]:
        """``count`` trade ids: the ones drawn with the facts, then more from the sequence if the orders made more
        trades than there were orders."""
        taken, self.trade_ids = self.trade_ids[:count], self.trade_ids[count:]
        if len(taken) < count:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence('exchange_trade', 'id')) FROM generate_series(1, %s)",
                    [count - len(taken)],
                )
                taken += [trade_id for (trade_id,) in cursor.fetchall()]
        return taken

    # --- writing ----------------------------------------------------------------------------------------------
    def flush(self) -> dict[int, list[int]]:
        """Write the accepted orders; return each order's trade ids. After it the batch reads its facts afresh."""
        accepted, self.accepted = self.accepted, []
        latest, self.latest = self.latest, {}
        new_ids, self.new_ids = self.new_ids, set()
        if not accepted:
            self._reset_facts()
            return {}
        with pipeline():  # the writes go out together; only the inserts that return ids wait for an answer
            return self._write(accepted, latest, new_ids)

    def _write(self, accepted: list[_Accepted], latest: dict[int, Order], new_ids: set[int]) -> dict[int, list[int]]:
        """Everything in one statement (``greenledger_order_batch``, ``exchange/sql``), then the held units'
        serial blocks (they name their hold, so they go after it)."""
        holds = [a.hold for a in accepted]
        deltas: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
        for h in holds:
            deltas[(h.account_id, h.asset_id)][1] += h.quantity
        # The in-memory balances carry the batch's holds already: write them as they stand.
        for key in deltas:
            self.balances[key].held -= deltas[key][1]
        balances = balance_rows(self.balances, deltas)
        orders = [_as_now(a.order, latest) for a in accepted]
        trades = [(a, trades_of(a.order, a.fills)) for a in accepted]
        made_all = [t for _, made in trades for t in made]
        for trade, trade_id in zip(made_all, self._trade_ids(len(made_all)), strict=True):
            trade.pk = trade_id
        filled = [o for pk, o in sorted(latest.items()) if pk not in new_ids]
        params = [
            *_matrices(holds, HOLD_COLUMNS),
            _matrix(balances, "bigint"),
            *_matrices(orders, ORDER_COLUMNS),
            *_matrices(made_all, TRADE_COLUMNS),
            *_matrices(filled, FILL_COLUMNS),
            *audit_arrays([_event(a, made) for a, made in trades]),
            AUDIT_LOCK_KEY,
        ]
        with connection.cursor() as cursor:
            cursor.execute(_BATCH_CALL, params)
        for _ in accepted:
            note_recorded()
        moves = [
            BlockMove(
                asset_id=h.asset_id,
                account_id=h.account_id,
                quantity=h.quantity,
                take_hold_id=None,
                take_range=None,
                new_units=False,
                dest_account_id=h.account_id,
                dest_state=BlockState.HELD,
                dest_hold_id=h.pk,
            )
            for h in holds
            if self.assets.get(h.asset_id) is not None and self.assets[h.asset_id].serialised
        ]
        if moves:
            SerialBook().move(moves)
        self._reset_facts()
        return {a.order.pk: [t.pk for t in made] for a, made in trades}


#: The columns ``greenledger_order_batch`` takes per table, in its arguments' order: the attributes of one type
#: go as one two-dimensional array (a row per instance), so the call has a few dozen parameters whatever the
#: tables' widths (psycopg parses a statement of more than 50 parameters afresh at every call). Every concrete
#: column of the model but a generated one (``test_the_batch_statement_writes_every_column_of_its_tables``).
HOLD_COLUMNS = [
    ("bigint", ["id", "quantity", "remaining", "account_id", "asset_id"]),
    ("text", ["kind", "reference", "status"]),
    ("timestamptz", ["created_at", "ended_at"]),
]
ORDER_COLUMNS = [
    (
        "bigint",
        [
            "id",
            "price_fen",
            "quantity",
            "filled",
            "filled_turnover_fen",
            "fee_fen",
            "account_id",
            "asset_id",
            "hold_id",
            "participant_id",
            "counterparty_id",
            "auction_id",
        ],
    ),
    ("text", ["side", "mode", "status", "end_reason", "client_order_id", "trading_mode"]),
    ("timestamptz", ["created_at", "ended_at"]),
    ("date", ["trading_day"]),
    ("boolean", ["partial_allowed"]),
]
TRADE_COLUMNS = [
    (
        "bigint",
        [
            "id",
            "price_fen",
            "quantity",
            "turnover_fen",
            "buyer_fee_fen",
            "seller_fee_fen",
            "asset_id",
            "buy_order_id",
            "sell_order_id",
        ],
    ),
    ("text", ["mode", "aggressor", "trading_mode"]),
    ("date", ["trading_day"]),
    ("timestamptz", ["created_at"]),
]
#: The resting orders' fill columns (``ORDER_FILL_COLUMNS``), by the order's id.
FILL_COLUMNS = [
    ("bigint", ["id", "filled", "filled_turnover_fen", "fee_fen"]),
    ("text", ["status", "end_reason"]),
    ("timestamptz", ["ended_at"]),
]

_BATCH_TYPES = [
    *(t for t, _ in HOLD_COLUMNS),
    "bigint",
    *(t for t, _ in ORDER_COLUMNS),
    *(t for t, _ in TRADE_COLUMNS),
    *(t for t, _ in FILL_COLUMNS),
    *AUDIT_ARRAY_TYPES,
]
_BATCH_CALL = "SELECT greenledger_order_batch(" + ", ".join(f"%s::{t}[]" for t in _BATCH_TYPES) + ", %s::bigint)"


def _element(value: Any) -> str:
    """One element of an array literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime has no instant")
        return f'"{value.isoformat()}"'  # with its UTC offset: exact whatever the session's time zone
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no array literal for {type(value).__name__}")


def _matrix(rows: list[Any], pgtype: str) -> str:
    """A two-dimensional array literal for ``%s::<pgtype>[]`` (the server parses it), a row per row; ``{}``
    when there are none."""
    return "{" + ",".join("{" + ",".join(map(_element, row)) + "}" for row in rows) + "}"


def _matrices(instances: list[Any], columns: list[tuple[str, list[str]]]) -> list[str]:
    """The instances' attributes as ``columns`` groups them: one two-dimensional array per type."""
    return [_matrix([[getattr(i, name) for name in names] for i in instances], pgtype) for pgtype, names in columns]


def _columns(model: type[models.Model]) -> str:
    return ", ".join(f'"{f.column}"' for f in model._meta.concrete_fields)


def _send(sql: str, params: list[Any]) -> Any:
    """Send a read; in a pipeline its answer comes with the next statement whose answer is waited for."""
    cursor = connection.cursor()
    cursor.execute(sql, params)
    return cursor


def _answer(cursor: Any) -> list[tuple[Any, ...]]:
    with connection.wrap_database_errors:
        rows = cursor.fetchall()
    cursor.close()
    return rows


def _as_now(order: Order, latest: dict[int, Order]) -> Order:
    """The order's row as the batch left it (later orders of the batch may have filled it)."""
    now = latest.get(order.pk, order)
    if now is not order:
        for name in ("filled", "filled_turnover_fen", "fee_fen", "status", "end_reason", "ended_at"):
            setattr(order, name, getattr(now, name))
    return order


def _event(a: _Accepted, trades: list[Trade]) -> tuple[Actor, str, Any, dict[str, Any], datetime]:
    """The ``order.place`` event ``order_place`` records, with the same payload."""
    return (a.actor, "order.place", a.order, place_payload(a.order, a.hold, trades), a.order.created_at)


__all__ = ["KnownRules", "NeedsService", "OrderBatch"]
