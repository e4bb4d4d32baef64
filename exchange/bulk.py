"""Set-wise writes for the ledger: many rows in one statement, whatever their number.

On PostgreSQL inserts use COPY and updates and deletes pass arrays (one parameter per column), so a
settlement batch of a hundred thousand trades costs the same few statements as one trade. In pipeline
mode (the transfer services) inserts are multi-row INSERTs instead: COPY can't run there, and for a
transfer's few rows it costs two round trips where a queued INSERT costs none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from core.db import in_pipeline

# PostgreSQL allows 65,535 bound parameters per statement; client-side binding has no limit, but stay modest.
INSERT_MAX_VARIABLES = 20_000


_INTEGER_TYPES = frozenset({"bigint", "integer", "smallint"})
_TEXT_TYPES = frozenset({"text", "varchar"})
_TIME_TYPES = frozenset({"timestamptz"})


def _quoted(text: str) -> str:
    """An array literal's element, double-quoted (so commas, braces, spaces and ``NULL`` stay text)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_array(values: Sequence[Any], pgtype: str) -> Any:
    """One array parameter for ``%s::<pgtype>[]``.

    A column of integers, text or timestamps goes as its array literal (``{1,2,NULL}``,
    ``{"posted",NULL}``, ``{"2026-12-02 07:00:00.5+00:00"}``), which the server parses: psycopg would
    otherwise adapt each element in Python, the larger part of a large write's client time (a settlement
    writes 100,000 holds' status and end time). Anything else goes as the list, for psycopg to adapt.
    """
    if pgtype in _INTEGER_TYPES:
        if None in values:
            return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
        return "{" + ",".join(map(str, values)) + "}"  # a non-integer here fails the cast, loudly
    if pgtype in _TEXT_TYPES and all(v is None or isinstance(v, str) for v in values):
        return "{" + ",".join("NULL" if v is None else _quoted(str(v)) for v in values) + "}"
    if pgtype in _TIME_TYPES and all(v is None or (isinstance(v, datetime) and v.tzinfo) for v in values):
        # isoformat gives the UTC offset: the instant is exact whatever the session's time zone.
        return "{" + ",".join("NULL" if v is None else f'"{v.isoformat()}"' for v in values) + "}"
    return list(values)


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def bulk_insert(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows (tuples in ``columns`` order)."""
    if not rows:
        return
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if not in_pipeline():
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        per_row = len(columns)
        placeholders = "(" + ", ".join(["%s"] * per_row) + ")"
        for chunk in _chunks(rows, max(1, INSERT_MAX_VARIABLES // per_row)):
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES " + ", ".join([placeholders] * len(chunk)),
                [v for row in chunk for v in row],
            )


def bulk_update(table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``columns`` (name, PostgreSQL type) of the rows with these ids: each row is (id, *values)."""
    if not rows:
        return
    names = [name for name, _ in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names)
    types = ["bigint", *[t for _, t in columns]]
    arrays = [pg_array([row[i] for row in rows], pgtype) for i, pgtype in enumerate(types)]
    unnest = ", ".join(f"%s::{pgtype}[]" for pgtype in types)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({unnest}) AS v(id, {', '.join(names)}) "
            f"WHERE {table}.id = v.id",
            arrays,
        )


def delete_ids(table: str, ids: Sequence[int]) -> None:
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])", [pg_array(ids, "bigint")])


Columns = Sequence[tuple[str, str]]  # (name, PostgreSQL type)


def write_all(
    *,
    updates: Sequence[tuple[str, Columns, Sequence[Sequence[Any]]]] = (),
    inserts: Sequence[tuple[str, Columns, Sequence[Sequence[Any]]]] = (),
) -> None:
    """Apply several ``bulk_update``s and ``bulk_insert``s, as one statement in pipeline mode.

    In pipeline mode every part becomes a data-modifying CTE over arrays (one parameter per
    column) of a single statement: one parse, one plan, one execute for a transfer's balances, postings and
    movements. The parts must not depend on each other (they see one snapshot, in no set order);
    constraints and triggers apply to each part as to a statement of its own. Outside a pipeline each part
    runs as the function of its kind would run it.
    """
    updates = [u for u in updates if u[2]]
    inserts = [i for i in inserts if i[2]]
    if not in_pipeline():
        for table, columns, rows in updates:
            bulk_update(table, columns, rows)
        for table, columns, rows in inserts:
            bulk_insert(table, [name for name, _ in columns], rows)
        return
    parts: list[str] = []
    params: list[Any] = []
    for n, (table, columns, rows) in enumerate(updates):
        names = [name for name, _ in columns]
        unnest = ", ".join(f"%s::{t}[]" for t in ["bigint", *[t for _, t in columns]])
        parts.append(
            f"u{n} AS (UPDATE {table} SET {', '.join(f'{c} = v.{c}' for c in names)} "
            f"FROM unnest({unnest}) AS v(id, {', '.join(names)}) WHERE {table}.id = v.id)"
        )
        types = ["bigint", *[t for _, t in columns]]
        params += [pg_array([row[i] for row in rows], pgtype) for i, pgtype in enumerate(types)]
    for n, (table, columns, rows) in enumerate(inserts):
        column_list = ", ".join(name for name, _ in columns)
        unnest = ", ".join(f"%s::{t}[]" for _, t in columns)
        parts.append(f"i{n} AS (INSERT INTO {table} ({column_list}) SELECT * FROM unnest({unnest}))")
        params += [pg_array([row[i] for row in rows], pgtype) for i, (_, pgtype) in enumerate(columns)]
    if not parts:
        return
    with connection.cursor() as cursor:
        cursor.execute("WITH " + ", ".join(parts) + " SELECT 1", params)
