"""The embedded PostgreSQL (config/embedded_db.py) and how the tests choose their server (config/services.py).

The sharing test starts a server of its own under ``tmp_path`` in two child processes, as ``make run``'s
``serve`` and a ``manage.py`` command run beside it would: the second joins the first's server, and the
server stops when the last of them exits.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from config import embedded_db, services

ROOT = Path(__file__).resolve().parents[2]


def test_a_socket_url_is_reachable_only_while_something_listens_there(tmp_path):
    url = f"postgres://postgres@{quote(str(tmp_path), safe='')}:5432/greenledger"
    assert not services.reachable(url, 5432)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(tmp_path / ".s.PGSQL.5432"))
        listener.listen(1)
        assert services.reachable(url, 5432)


def test_without_a_reachable_postgresql_the_tests_take_the_embedded_one(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)
    monkeypatch.setattr(services, "reachable", lambda url, port, timeout=1.0: False)

    assert services.resolve("PostgreSQL", "DATABASE_URL", services.DEFAULT_DATABASE_URL, 5432) == ""


def test_with_require_services_a_missing_postgresql_is_an_error(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    monkeypatch.setattr(services, "reachable", lambda url, port, timeout=1.0: False)

    with pytest.raises(services.ServiceUnavailable, match="PostgreSQL is not reachable"):
        services.resolve("PostgreSQL", "DATABASE_URL", services.DEFAULT_DATABASE_URL, 5432)


def test_a_database_url_that_does_not_answer_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/greenledger")
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)

    with pytest.raises(services.ServiceUnavailable):
        services.resolve("PostgreSQL", "DATABASE_URL", services.DEFAULT_DATABASE_URL, 5432)


def test_forcing_the_embedded_server_skips_the_probe(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("GREENLEDGER_EMBEDDED_DB", "1")

    def reachable(url: str, port: int, timeout: float = 1.0) -> bool:
        assert port != 5432, "PostgreSQL was probed"
        return True

    monkeypatch.setattr(services, "reachable", reachable)

    services.configure_test_environment()

    assert "DATABASE_URL" not in os.environ  # the settings start the embedded server


def test_stop_without_a_server_says_so(tmp_path):
    assert embedded_db.stop(tmp_path) is False


HOLDER = """
import sys
from pathlib import Path
from config import embedded_db
print(embedded_db.start(Path(sys.argv[1])), flush=True)
sys.stdin.read()  # hold the server until the test closes stdin
"""

JOINER = """
import sys
from pathlib import Path
import psycopg
from config import embedded_db
url = embedded_db.start(Path(sys.argv[1]))
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    conn.execute("CREATE TABLE IF NOT EXISTS r (a int, s int8range, EXCLUDE USING gist (a WITH =, s WITH &&))")
print(url, flush=True)
"""


@pytest.mark.slow
def test_two_processes_share_one_server_and_the_last_to_exit_stops_it(tmp_path):
    var = tmp_path / "var"
    pid_file = embedded_db.data_dir(var) / "postmaster.pid"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(var)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = holder.stdout.readline().strip()
        assert url.startswith("postgres://postgres@"), url
        server_pid = pid_file.read_text().split()[0]

        joined = subprocess.run(
            [sys.executable, "-c", JOINER, str(var)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert joined.returncode == 0, joined.stderr
        assert joined.stdout.strip() == url  # the same server, not a second one
        # The joiner has exited; the holder still uses the server, so it still runs (the same one).
        assert pid_file.read_text().split()[0] == server_pid
        assert services.reachable(url, 5432)
    finally:
        holder.stdin.close()
        holder.wait(60)

    assert holder.returncode == 0
    assert not pid_file.exists()  # the last process to exit stopped it
    assert not services.reachable(url, 5432)
