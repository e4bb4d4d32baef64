"""The benchmark database: a PostgreSQL database of its own, created fresh and dropped afterwards.

A PostgreSQL server is required (127.0.0.1:5432, or BENCH_DATABASE_URL): the benchmarks measure row locks,
triggers and commits on a server configured like a deployment's, not the embedded demo server.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse, urlunparse

from config.services import START_HINTS, reachable

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/gl_bench"


class BenchSetupError(RuntimeError):
    pass


def bench_url(url: str | None = None) -> str:
    return url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL


def _admin_url(url: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/postgres"))


def db_name(url: str) -> str:
    name = urlparse(url).path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise BenchSetupError(f"bench database name {name!r} must be letters, digits and underscores")
    return name


def require_postgres(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        raise BenchSetupError(f"the benchmarks need PostgreSQL; {url!r} is not a PostgreSQL URL")
    if not reachable(url, 5432):
        raise BenchSetupError(
            f"PostgreSQL is not reachable at {url}. Start it with: {START_HINTS['PostgreSQL']} "
            "(or set BENCH_DATABASE_URL to a reachable server)."
        )


def recreate(url: str) -> None:
    import psycopg

    name = db_name(url)
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name(url)}" WITH (FORCE)')


def configure_django(url: str) -> None:
    """Point Django at the bench database, with the settings a deployment runs (DEBUG off)."""
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("DB_CONN_MAX_AGE", "600")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # The bench's setup allocates far above the four-eyes threshold (approval is not what it measures),
    # and it measures immediate transfers between holders that don't trust each other: with the trust rule
    # on, such a transfer would wait as a pending one. docs/performance.md says what the rule adds.
    os.environ.setdefault("FOUR_EYES_THRESHOLD", str(10**15))
    os.environ.setdefault("TRUSTED_ACCOUNTS", "0")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
