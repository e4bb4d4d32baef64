"""Database helpers: which engine we are on, and migration operations for PostgreSQL-only SQL."""

from __future__ import annotations

from typing import Any

from django.db import connection, migrations


def is_postgres(conn: Any = None) -> bool:
    return (conn or connection).vendor == "postgresql"


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
