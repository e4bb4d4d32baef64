"""Every row lock and advisory lock, and the one order they are taken in, so that nothing deadlocks.

A transaction takes the locks it needs in this order, skipping those it doesn't need, never going back
to an earlier step once it holds a later one:

0. **an Idempotency-Key** (``IDEMPOTENCY_LOCK_CLASS``): advisory, per key, tried without waiting when a
   keyed request claims its key, before anything else.
1. **settlement** (``lock_settlement``): advisory, exclusive; one settlement run at a time. A buy that draws
   on unsettled sale proceeds takes it later, shared and only with ``try_lock_settlement_shared`` (never
   waiting), then that account's proceeds lock (``lock_proceeds``), which nothing else takes.
2. **the operation's own rows**, each kind in id order: pledge enforcements, then pledge loans
   (``lock_enforcements``, ``lock_pledge_loans``); compliance years, then obligations; an approval
   request; trusted accounts; pending transfers; a calendar, then its years (``lock_rows``/``lock_row``).
3. **the order book** of an asset (``lock_book``): advisory, per asset; placing, matching and
   cancelling orders, and a pledge put up for sale.
4. **the asset row** (``lock_asset_serials``): only to hand out new serial numbers.
5. **balance rows** sorted by ``(account_id, asset_id)`` (``lock_balances``).
6. **hold rows** sorted by id (``lock_holds``).
7. **the audit writers' lock** (``AUDIT_LOCK_KEY``): advisory, shared, taken by each event's INSERT
   (``greenledger_audit_record`` in ``exchange/sql``) and held to commit. The sealer takes it
   exclusively (``lock_audit_horizon``) in a short transaction that takes no other lock, and seals in
   another that takes only the sealers' own lock (``lock_sealer``).
8. **participant event counters** (``exchange_participanteventcounter``), by participant id: taken and
   advanced, each once for all the statement's events, by the projection's statement trigger after each INSERT
   of audit events (``greenledger_event_project`` in ``exchange/sql``), in the audit events' transaction, so
   each participant's event numbers commit in order (``exchange.models.events``).

Settlement follows it too: it locks the enforcements and loans of the pledged units it settles (step 2)
before the ledger locks balances and holds, and the pledge services lock a loan before the book,
balances and holds. ``greenledger_balances_post`` (``exchange/sql``), the balance bookkeeping that
``ledger_post`` and ``greenledger_transfer`` call, takes steps 5 and 6 as the helpers do, and
``greenledger_transfer`` step 7.

A group of single transfers committed in one transaction (``exchange.group_commit``) takes steps 5 and 8 for all
its members before the first runs (``lock_existing_balances``, ``lock_event_counters``): its members, one after
another, then take rows the group already holds, but for a destination's balance row created on its first receipt
(a deadlock there fails that member alone, which then runs by itself).

Serial blocks are never locked themselves: every change to an account's blocks of an asset first locks
that account's balance row in the asset, so the balance lock guards the blocks. Each helper runs its
statement and evaluates it, so the lock is really taken.

Outside the order, on a connection of its own: the leading beat's session lock (``BEAT_LOCK_KEY``,
``exchange/beat.py``), and a matching engine's session lock on each book it owns (``try_own_book``,
``exchange/engine``), taken before its first batch and held for the life of its connection. The locks taken
outside this module, each with its key from here, are the beat's, and a key's lock, which the key store takes
with its row in one statement (``exchange/services/idempotency.py``); ``tests/architecture/test_one_home.py``
holds that nothing else locks. Due work (notices, schedule rows) is taken with
``lock_rows(..., skip_locked=True)`` or ``lock_row`` in a transaction that takes no other lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.db import connection
from django.db.models import Model, QuerySet

from exchange.bulk import pg_array
from exchange.models import Asset, Balance, Hold, ParticipantEventCounter, PledgeEnforcement, PledgeLoan

M = TypeVar("M", bound=Model)

# Advisory lock keys (ASCII tags, so they read in pg_locks).
SETTLEMENT_LOCK_KEY = 0x676C736574  # "glset": one settlement at a time
BOOK_LOCK_NAMESPACE = 0x676C62  # "glb": pg_advisory_xact_lock(namespace, asset id)
PROCEEDS_LOCK_NAMESPACE = 0x676C70  # "glp": pg_advisory_xact_lock(namespace, account id)
AUDIT_LOCK_KEY = 0x676C6175646974  # "glaudit": event writers (shared) and the sealer's horizon (exclusive)
SEALER_LOCK_KEY = AUDIT_LOCK_KEY + 1  # one sealer at a time
# The class half of the two-int advisory lock on an Idempotency-Key ("gl" "id"): taken without waiting
# (pg_try_advisory_xact_lock) when a key is claimed, in exchange/services/idempotency.py, before step 1.
IDEMPOTENCY_LOCK_CLASS = 0x676C6964 & 0x7FFFFFFF
# Session-level, outside the order above (held on its own connection, never inside a transaction that
# takes other locks): the leading beat holds it for as long as its connection lives (exchange/beat.py).
BEAT_LOCK_KEY = 7_245_190_001
# Session-level too: the matching engine owning an asset's continuous book (pg_try_advisory_lock(namespace, asset)).
ENGINE_LOCK_NAMESPACE = 0x676C65  # "gle"


def _advisory(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# 1. settlement
def lock_settlement() -> None:
    """One settlement at a time (until the end of the transaction)."""
    _advisory("SELECT pg_advisory_xact_lock(%s)", [SETTLEMENT_LOCK_KEY])


def try_lock_settlement_shared() -> bool:
    """Keep settlement from starting, if none is running, without waiting (so it may be taken after the book
    lock without deadlocking): a buy drawing on unsettled sale proceeds (``services.proceeds``). Shared: buys
    of different accounts draw at once; ``lock_proceeds`` serialises one account's."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", [SETTLEMENT_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def lock_proceeds(account_id: int) -> None:
    """One draw on an account's unsettled sale proceeds at a time (taken after the settlement lock above)."""
    _advisory("SELECT pg_advisory_xact_lock(%s, %s)", [PROCEEDS_LOCK_NAMESPACE, account_id])


# 2. the operation's own rows
def lock_rows(queryset: QuerySet[M], *, skip_locked: bool = False) -> list[M]:
    """Lock the rows of ``queryset`` (its own table's only, whatever ``select_related`` joins), in its
    order, or by id if it has none; return them. ``skip_locked`` leaves out rows another transaction holds
    (a worker taking due work)."""
    if not queryset.ordered:
        queryset = queryset.order_by("pk")
    return list(queryset.select_for_update(of=("self",), skip_locked=skip_locked))


def lock_row(queryset: QuerySet[M]) -> M | None:
    """Lock the one row of ``queryset`` (filtered to one) and return it, or None if there is none."""
    rows = lock_rows(queryset)
    return rows[0] if rows else None


def lock_enforcements(queryset: QuerySet[PledgeEnforcement]) -> list[PledgeEnforcement]:
    """Lock these pledge enforcements (only their own rows), in id order; return them."""
    return lock_rows(queryset.order_by("id"))


def lock_pledge_loans(queryset: QuerySet[PledgeLoan]) -> list[PledgeLoan]:
    """Lock these pledge loans (only their own rows, whatever ``select_related`` joins), in id order."""
    return lock_rows(queryset.order_by("id"))


def lock_pledge_sales(sell_order_ids: Iterable[int]) -> None:
    """Lock the enforcements selling through these orders, then their loans: what settling the orders'
    trades will change, taken before the ledger locks balances and holds."""
    ids = sorted(set(sell_order_ids))
    if not ids:
        return
    enforcements = lock_enforcements(PledgeEnforcement.objects.filter(order_id__in=ids).only("id", "loan_id"))
    lock_pledge_loans(PledgeLoan.objects.filter(pk__in={e.loan_id for e in enforcements}).only("id"))


# 3. the order book
def lock_book(asset_id: int) -> None:
    """Serialise everything that changes one asset's book (place, match, cancel)."""
    _advisory("SELECT pg_advisory_xact_lock(%s, %s)", [BOOK_LOCK_NAMESPACE, asset_id])


def try_own_book(asset_id: int) -> bool:
    """Take the engine's session lock on an asset's continuous book without waiting; False: another engine has it.
    Held until the connection closes (an engine that dies lets go of its books)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ENGINE_LOCK_NAMESPACE, asset_id])
        return bool(cursor.fetchone()[0])


def release_book(asset_id: int) -> None:
    """Let go of the engine's session lock on a book (an engine stopping cleanly)."""
    _advisory("SELECT pg_advisory_unlock(%s, %s)", [ENGINE_LOCK_NAMESPACE, asset_id])


# 4. the asset row
def lock_asset_serials(asset_id: int) -> Asset:
    """Lock the asset row to hand out its next serial numbers; return it (``next_serial`` only)."""
    return Asset.objects.select_for_update().only("next_serial").get(pk=asset_id)


# 7. the audit trail
def lock_audit_horizon(timeout_ms: int) -> None:
    """Take the audit writers' lock exclusively (the sealer's horizon), waiting at most ``timeout_ms``
    (then ``OperationalError`` with SQLSTATE 55P03). In a transaction that takes no other lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{timeout_ms}ms"])
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])


def lock_sealer() -> None:
    """One sealer at a time."""
    _advisory("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])


# 5. balance rows


@dataclass(slots=True)
class LockedBalance:
    id: int
    account_id: int
    asset_id: int
    total: int
    held: int
    allow_negative: bool
    created: bool = False

    @property
    def available(self) -> int:
        return self.total - self.held


def _balances_select(table: str, pairs: list[tuple[int, int]]) -> tuple[str, list[Any]]:
    """The balance rows of these pairs, locked in (account_id, asset_id) order.

    The pairs go as two arrays joined to the table: a thousand pairs written as a row IN list cost the
    planner more than the lock itself (an OR of a thousand index probes).
    """
    columns = "b.id, b.account_id, b.asset_id, b.total, b.held, b.allow_negative"
    return (
        f"SELECT {columns} FROM {table} b JOIN unnest(%s::bigint[], %s::bigint[]) AS k(account_id, asset_id) "
        "ON b.account_id = k.account_id AND b.asset_id = k.asset_id "
        "ORDER BY b.account_id, b.asset_id FOR UPDATE OF b",
        [pg_array([a for a, _ in pairs], "bigint"), pg_array([s for _, s in pairs], "bigint")],
    )


def lock_balances(
    keys: Iterable[tuple[int, int]],
    *,
    allow_negative: Iterable[int] = (),
    then: Callable[[], None] | None = None,
) -> dict[tuple[int, int], LockedBalance]:
    """Lock (creating where missing) the balance rows of these (account_id, asset_id) pairs.

    ``allow_negative`` names accounts whose new balance rows may go negative (the issuance account).
    ``then`` is called after the lock statement is sent and before its answer is read: in pipeline mode
    what it sends rides in the same round trip, and runs once the locks are granted. Rows created here
    (``created``) were locked only after it ran.
    """
    pairs = sorted(set(keys))
    if not pairs:
        return {}
    negative = set(allow_negative)
    table = Balance._meta.db_table
    select, params = _balances_select(table, pairs)
    with connection.cursor() as cursor:
        cursor.execute(select, params)
        if then is not None:
            then()
        rows = cursor.fetchall()
        created: set[tuple[int, int]] = set()
        if len(rows) < len(pairs):
            found = {(r[1], r[2]) for r in rows}
            missing = [p for p in pairs if p not in found]
            created = set(missing)
            # Three array parameters, however many rows: a settlement's first delivery to a thousand buyers
            # creates their rows, and a VALUES list with three bound values a row cost a second of parsing
            # on either side.
            cursor.execute(
                f"INSERT INTO {table} (account_id, asset_id, total, held, allow_negative) "
                "SELECT k.account_id, k.asset_id, 0, 0, k.account_id = ANY(%s::bigint[]) "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS k(account_id, asset_id) "
                "ON CONFLICT (account_id, asset_id) DO NOTHING",
                [
                    pg_array(sorted(negative), "bigint"),
                    pg_array([a for a, _ in missing], "bigint"),
                    pg_array([s for _, s in missing], "bigint"),
                ],
            )
            cursor.execute(select, params)
            rows = cursor.fetchall()
    return {
        (r[1], r[2]): LockedBalance(r[0], r[1], r[2], r[3], r[4], bool(r[5]), (r[1], r[2]) in created) for r in rows
    }


def lock_existing_balances(keys: Iterable[tuple[int, int]]) -> int:
    """Lock the balance rows of these (account_id, asset_id) pairs that exist, in key order, creating none; return
    how many. A group of transfers committed together (``exchange.group_commit``) takes its members' rows so
    before the first of them runs: each member then takes only rows its group holds (or creates), and two
    groups never wait for each other half way."""
    pairs = sorted(set(keys))
    if not pairs:
        return 0
    select, params = _balances_select(Balance._meta.db_table, pairs)
    with connection.cursor() as cursor:
        cursor.execute(select, params)
        return len(cursor.fetchall())


# 6. hold rows
class HoldRef(Protocol):
    """What names a hold to ledger_post and holds_release (which lock and read the row themselves)."""

    @property
    def pk(self) -> int: ...
    @property
    def account_id(self) -> int: ...
    @property
    def asset_id(self) -> int: ...


@dataclass(slots=True)
class LockedHold:
    """A hold row as read under lock: its columns, without a model instance (settlement reads 100,000)."""

    id: int
    account_id: int
    asset_id: int
    kind: str
    reference: str
    quantity: int
    remaining: int
    status: str
    created_at: datetime
    ended_at: datetime | None

    @property
    def pk(self) -> int:
        return self.id


_HOLD_COLUMNS = "id, account_id, asset_id, kind, reference, quantity, remaining, status, created_at, ended_at"


def lock_holds(hold_ids: Iterable[int]) -> dict[int, LockedHold]:
    """Lock these hold rows, in id order. One array parameter, however many (a settlement locks 100,000)."""
    return _holds(hold_ids, lock=True)


def read_holds(hold_ids: Iterable[int]) -> dict[int, LockedHold]:
    """These hold rows, unlocked (read as ``lock_holds`` reads them)."""
    return _holds(hold_ids, lock=False)


def holds_select(hold_ids: Iterable[int], *, lock: bool = False) -> tuple[str, list[Any]]:
    """The statement that reads these hold rows in id order (and locks them, with ``lock``); its rows are
    ``LockedHold(*row)``. For a caller that sends it in a pipeline and reads the answer later."""
    table = Hold._meta.db_table
    sql = f"SELECT {_HOLD_COLUMNS} FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id" + (
        " FOR UPDATE" if lock else ""
    )
    return sql, [pg_array(sorted(set(hold_ids)), "bigint")]


def _holds(hold_ids: Iterable[int], *, lock: bool) -> dict[int, LockedHold]:
    ids = sorted(set(hold_ids))
    if not ids:
        return {}
    sql, params = holds_select(ids, lock=lock)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: LockedHold(*row) for row in cursor.fetchall()}


def lock_hold(hold_id: int) -> Hold:
    """Lock one hold row; return it as a model instance."""
    return Hold.objects.select_for_update().get(pk=hold_id)


# 8. participant event counters
def lock_event_counters(participant_ids: Iterable[int]) -> None:
    """Lock the event counters of these participants that exist, in id order (a group of transfers committed
    together takes them after its balance rows, before its members' events advance them one by one)."""
    ids = sorted(set(participant_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT participant_id FROM {ParticipantEventCounter._meta.db_table} "
            "WHERE participant_id = ANY(%s::bigint[]) ORDER BY participant_id FOR UPDATE",
            [pg_array(ids, "bigint")],
        )
        cursor.fetchall()
