"""Row locks, taken in one fixed order so that concurrent movements never deadlock.

The order: the asset row (only to hand out new serial numbers), then balance rows sorted by
``(account_id, asset_id)``, then holds sorted by id. Serial blocks are never locked themselves: every
change to an account's blocks of an asset first locks that account's balance row in the asset, so the
balance lock guards the blocks. Each helper runs one statement and evaluates it, so the lock is really
taken. On SQLite the whole database is locked at BEGIN (``transaction_mode=IMMEDIATE``), so the
helpers only read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from exchange.bulk import pg_array
from exchange.db import is_postgres
from exchange.models import Balance, Hold


def _for_update(lock: bool = True) -> str:
    return " FOR UPDATE" if lock and connection.features.has_select_for_update else ""


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

    On PostgreSQL the pairs go as two arrays joined to the table: a thousand pairs written as a row IN
    list cost the planner more than the lock itself (an OR of a thousand index probes).
    """
    columns = "b.id, b.account_id, b.asset_id, b.total, b.held, b.allow_negative"
    if is_postgres():
        return (
            f"SELECT {columns} FROM {table} b JOIN unnest(%s::bigint[], %s::bigint[]) AS k(account_id, asset_id) "
            "ON b.account_id = k.account_id AND b.asset_id = k.asset_id "
            "ORDER BY b.account_id, b.asset_id FOR UPDATE OF b",
            [pg_array([a for a, _ in pairs], "bigint"), pg_array([s for _, s in pairs], "bigint")],
        )
    placeholders = ", ".join(["(%s, %s)"] * len(pairs))
    return (
        f"SELECT {columns} FROM {table} b WHERE (b.account_id, b.asset_id) IN ({placeholders}) "
        "ORDER BY b.account_id, b.asset_id" + _for_update(),
        [v for pair in pairs for v in pair],
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
            values = ", ".join(["(%s, %s, 0, 0, %s)"] * len(missing))
            cursor.execute(
                f"INSERT INTO {table} (account_id, asset_id, total, held, allow_negative) VALUES {values} "
                "ON CONFLICT (account_id, asset_id) DO NOTHING",
                [v for a, s in missing for v in (a, s, a in negative)],
            )
            cursor.execute(select, params)
            rows = cursor.fetchall()
    return {
        (r[1], r[2]): LockedBalance(r[0], r[1], r[2], r[3], r[4], bool(r[5]), (r[1], r[2]) in created) for r in rows
    }


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


def _holds(hold_ids: Iterable[int], *, lock: bool) -> dict[int, LockedHold]:
    ids = sorted(set(hold_ids))
    if not ids:
        return {}
    table = Hold._meta.db_table
    if is_postgres():
        sql = f"SELECT {_HOLD_COLUMNS} FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id" + _for_update(lock)
        with connection.cursor() as cursor:
            cursor.execute(sql, [pg_array(ids, "bigint")])
            return {row[0]: LockedHold(*row) for row in cursor.fetchall()}
    holds: dict[int, LockedHold] = {}
    names = [c.strip() for c in _HOLD_COLUMNS.split(",")]
    for start in range(0, len(ids), 10_000):
        queryset = Hold.objects.filter(pk__in=ids[start : start + 10_000]).order_by("pk").values_list(*names)
        holds.update((row[0], LockedHold(*row)) for row in (queryset.select_for_update() if lock else queryset))
    return holds
