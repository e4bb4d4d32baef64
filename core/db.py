"""Database helpers: raw row reads, psycopg's pipeline mode, and the migration operation for raw SQL."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection, migrations, models

M = TypeVar("M", bound=models.Model)


@functools.cache
def _select(model: type[models.Model]) -> tuple[list[str], str]:
    fields = model._meta.concrete_fields
    columns = ", ".join(f'"{f.column}"' for f in fields)
    return [f.attname for f in fields], f"SELECT {columns} FROM {model._meta.db_table}"


def fetch_rows(model: type[M], where: str, params: Sequence[Any]) -> list[M]:
    """Instances of ``model`` for a raw ``WHERE`` clause: what the ORM returns, without building a query.

    For the per-request lookups of the hot API paths, where composing the ORM query costs more than
    running it.
    """
    names, select = _select(model)
    with connection.cursor() as cursor:
        cursor.execute(f"{select} WHERE {where}", params)
        rows = cursor.fetchall()
    return [model.from_db(connection.alias, names, row) for row in rows]


def joined_rows(
    model: type[M], related: type[models.Model], field: str, where: str, params: Sequence[Any]
) -> list[M]:
    """``model`` rows (alias ``b``) with their ``field`` foreign key's row (alias ``a``) attached, as
    ``select_related(field)`` attaches it, read with one raw query."""
    names, _ = _select(model)
    related_names, _ = _select(related)
    columns = ", ".join(
        [f'b."{f.column}"' for f in model._meta.concrete_fields]
        + [f'a."{f.column}"' for f in related._meta.concrete_fields]
    )
    fk = model._meta.get_field(field).column  # type: ignore[union-attr]
    sql = (
        f"SELECT {columns} FROM {model._meta.db_table} b JOIN {related._meta.db_table} a ON a.id = b.{fk} "
        f"WHERE {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    result = []
    for row in rows:
        instance = model.from_db(connection.alias, names, row[: len(names)])
        instance._state.fields_cache[field] = related.from_db(connection.alias, related_names, row[len(names) :])
        result.append(instance)
    return result


def in_pipeline() -> bool:
    """Whether the connection is in psycopg's pipeline mode (statements queue; results come on demand)."""
    raw = connection.connection
    return raw is not None and raw._pipeline is not None


@contextmanager
def pipeline() -> Iterator[None]:
    """Send the block's statements without waiting for each one's answer.

    A statement whose result is fetched waits only for itself and what was queued before it, so a run of
    writes costs one round trip instead of one each. Errors surface at the next fetch or at the end of the
    block, as Django's database errors (so the services' deadlock retry still sees them). Already in a
    pipeline, the block joins it. Only for raw statements whose row counts nobody reads, and no COPY.
    """
    if in_pipeline():
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL for triggers, exclusion constraints and functions: the name the migrations import.

    greenledger runs on PostgreSQL only, so this is plain ``RunSQL``; it stays because applied migrations
    name it.
    """
