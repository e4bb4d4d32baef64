"""Find the PostgreSQL and Redis that tests and benchmarks use.

``DATABASE_URL`` and ``REDIS_URL`` win when set. Otherwise the local defaults are probed
(PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379). With ``REQUIRE_SERVICES=1`` a service that
can't be reached is an error naming the command that starts it. Without it the tests fall back to the
embedded PostgreSQL (``config.embedded_db``, data in ``var/pgdata``) and the in-process broker, and skip
what needs Redis. ``GREENLEDGER_EMBEDDED_DB=1`` skips the PostgreSQL probe and takes the embedded server
even when one answers on 5432 (to run the suite on the server ``make run`` uses).
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/greenledger"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
}


class ServiceUnavailable(RuntimeError):
    pass


def reachable(url: str, default_port: int, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    host = unquote(parsed.hostname or "127.0.0.1")
    port = parsed.port or default_port
    try:
        if host.startswith("/"):  # a Unix socket directory (the embedded PostgreSQL)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(Path(host) / f".s.PGSQL.{port}"))
                return True
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def embedded_database_forced() -> bool:
    return os.environ.get("GREENLEDGER_EMBEDDED_DB", "") in {"1", "true", "yes"}


def resolve(name: str, env_var: str, default_url: str, default_port: int, *, probe: bool = True) -> str:
    """Return the URL to use for a service, or '' to fall back to the embedded one."""
    url = os.environ.get(env_var, "")
    if not url and not probe:
        return ""
    candidate = url or default_url
    if reachable(candidate, default_port):
        return candidate
    if require_services() or url:
        raise ServiceUnavailable(
            f"{name} is not reachable at {candidate}. Start it with: {START_HINTS[name]} "
            f"(or set {env_var} to a reachable server)."
        )
    return ""


def checkout_suffix(path: object) -> str:
    """Six hex digits naming a checkout by its path: the test and soak databases of one checkout."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:6]


def configure_test_environment() -> None:
    """Export DATABASE_URL / REDIS_URL for the test settings (called before settings are read).

    Without a reachable PostgreSQL, DATABASE_URL stays unset and the settings start the embedded one.
    """
    db = resolve("PostgreSQL", "DATABASE_URL", DEFAULT_DATABASE_URL, 5432, probe=not embedded_database_forced())
    redis = resolve("Redis", "REDIS_URL", DEFAULT_REDIS_URL, 6379)
    if db:
        os.environ["DATABASE_URL"] = db
    if redis:
        os.environ["REDIS_URL"] = redis
