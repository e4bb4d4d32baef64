"""Database helpers: which engine we are on, and migration operations for PostgreSQL-only SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, migrations


def is_postgres(conn: Any = None) -> bool:
    return (conn or connection).vendor == "postgresql"


def in_pipeline() -> bool:
    """Whether the connection is in psycopg's pipeline mode (statements queue; results come on demand)."""
    raw = connection.connection
    return raw is not None and is_postgres() and raw._pipeline is not None


@contextmanager
def pipeline() -> Iterator[None]:
    """Send the block's statements without waiting for each one's answer (PostgreSQL; elsewhere a no-op).

    A statement whose result is fetched waits only for itself and what was queued before it, so a run of
    writes costs one round trip instead of one each. Errors surface at the next fetch or at the end of the
    block, as Django's database errors (so the services' deadlock retry still sees them). Already in a
    pipeline, the block joins it. Only for raw statements whose row counts nobody reads, and no COPY.
    """
    if not is_postgres() or in_pipeline():
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that applies on PostgreSQL only (triggers, exclusion constraints, functions).

    SQLite keeps the plain path: the same invariants are checked in Python and by ``reconcile``.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if is_postgres(schema_editor.connection):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if is_postgres(schema_editor.connection):
            super().database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return "PostgreSQL-only SQL"
