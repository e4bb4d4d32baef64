"""Django's PostgreSQL backend with two per-request costs taken out: the health query and slow time parsing.

The health check. Django checks a kept connection before a request first uses it (``conn_health_checks``)
and after a request that saw a database error; the stock check sends ``SELECT 1``, a round trip on every
request. Here the check asks the socket instead: an idle connection to a live server has nothing to read,
while a server that went away (stopped, restarted, the connection terminated) has sent its FATAL message
and closed, which leaves the socket readable. Only then, or outside an idle state, is ``SELECT 1`` sent,
so a dead connection is still found before the request uses it and replaced, and an outage still answers
503 (``config.health``).

Time parsing. Django reads ``timestamptz`` columns with a loader of its own, a Python subclass of
psycopg's, which keeps psycopg from using its C loader: about 20 microseconds a value against one (a
settlement reads 100,000 holds). When the session's time zone is UTC (``USE_TZ``, the default), psycopg's
C loader already returns what Django's does (aware datetimes in ``datetime.timezone.utc``), so this
backend registers it, under the ``timezone`` attribute Django's cursors check.
"""

from __future__ import annotations

import datetime
import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import adapt, pq
from psycopg.postgres import types as pg_types

TIMESTAMPTZ_OID = pg_types["timestamp with time zone"].oid


def _psycopg_timestamptz_loader() -> type[adapt.Loader]:
    """psycopg's ``timestamptz`` text loader as psycopg registers it: its C class where the binary module
    is installed, the Python one otherwise."""
    return psycopg.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT)  # type: ignore[return-value]


_PSYCOPG_LOADER = _psycopg_timestamptz_loader()


class _UtcTimestamptzLoader(adapt.Loader):
    """psycopg's own ``timestamptz`` loader, labelled with the time zone Django's cursors expect of theirs.
    ``load`` is the psycopg loader's bound method: reading a value runs no Python code."""

    timezone = datetime.UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self.load = _PSYCOPG_LOADER(oid, context).load  # type: ignore[method-assign]

    def load(self, data: Any) -> Any:  # replaced per instance in __init__
        raise NotImplementedError


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # Only where psycopg's result equals Django's: aware datetimes in UTC from a UTC session.
        if params.get("context") is not None and self.timezone is datetime.UTC and self.timezone_name == "UTC":
            context = adapt.AdaptersMap(params["context"])
            context.register_loader(TIMESTAMPTZ_OID, _UtcTimestamptzLoader)
            params["context"] = context
        return params

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed:
            return False
        if conn.info.transaction_status == pq.TransactionStatus.IDLE:
            try:
                readable, _, _ = select.select([conn.fileno()], [], [], 0)
            except (OSError, ValueError):
                return False
            if not readable:
                return True
        return super().is_usable()  # something arrived while idle, or not idle: ask the server
