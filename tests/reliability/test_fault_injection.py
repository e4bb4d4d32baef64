"""Faults injected into real processes: workers, beats and the API server, with the broker and the database
taken away under them. The private Redis and PostgreSQL (a throwaway cluster) run on their own ports: the
shared servers are never stopped.

- a prefork worker SIGKILLed mid-settlement: the broker hands the job to another worker, no re-send;
- Redis down at a job's due time: beat sends it once Redis is back;
- the job's database connections terminated mid-job: the job retries and settles once;
- the API while its database is down: 503 with Retry-After, and 200 again without a restart;
- two beats at once: one sends, each job once per period; the other takes over when the first dies.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core import clock
from exchange.models import SettlementBatch, SettlementStatus, Trade
from exchange.services.sealing import audit_verify
from exchange.tasks import settlement_run_task
from tests.helpers import workers
from tests.helpers.api import token_for
from tests.helpers.ledger import assert_reconciled
from tests.helpers.market import IN_SESSION, make_exchange
from tests.helpers.workers import ROOT, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PRIVATE_REDIS_PORT = 6395


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process in its own process group (a prefork worker's children die with it)."""

    def __init__(self, args: list[str], log: Path, **env: str) -> None:
        self.log = log
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": workers.test_database_url(),
            "REDIS_URL": settings.CELERY_BROKER_URL,
            "LOG_LEVEL": "WARNING",
            "DEBUG": "0",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=full_env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def running(args: list[str], log: Path, **env: str) -> Iterator[Process]:
    process = Process(args, log, **env)
    try:
        yield process
    finally:
        process.stop()


def worker_args(queue: str, pool: str = "prefork") -> list[str]:
    return [
        "-m", "celery", "-A", "config", "worker", f"--pool={pool}", "--concurrency=1", f"--queues={queue}",
        "--without-mingle", "--without-gossip", "--loglevel=WARNING", f"--hostname=fault-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip


def beat_args(tmp_path: Path, name: str) -> list[str]:
    return [
        "-m", "celery", "-A", "config", "beat", "--max-interval=1", "--loglevel=WARNING",
        f"--pidfile={tmp_path / f'{name}.pid'}", f"--schedule={tmp_path / f'{name}.db'}",
    ]  # fmt: skip


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class PrivateRedis:
    def __init__(self, tmp_path: Path) -> None:
        self.port = PRIVATE_REDIS_PORT
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = tmp_path / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the Redis outage tests"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self.answers, 10, "the private Redis to start", self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def queued(self, queue: str = "celery") -> int:
        return int(redis.Redis(port=self.port).llen(queue))


def trades_to_settle(n: int = 12):
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, s_acc, seller = ex.trader("Seller", units=1000)
        _, b_acc, buyer = ex.trader("Buyer", cash_fen=100_000_000)
        for _ in range(n):
            ex.order(seller, s_acc, "sell", 8000, 2)
            ex.order(buyer, b_acc, "buy", 8000, 2)
    assert Trade.objects.filter(settlement_batch__isnull=True).count() == n
    return ex


def settled_once(n: int) -> None:
    (batch,) = SettlementBatch.objects.filter(status=SettlementStatus.COMPLETED)
    assert batch.trades_count == n
    assert set(Trade.objects.values_list("settlement_batch_id", flat=True)) == {batch.pk}
    assert_reconciled()
    assert audit_verify().ok


def batch_completed() -> bool:
    return SettlementBatch.objects.filter(status=SettlementStatus.COMPLETED).exists()


# --- workers -------------------------------------------------------------------------------------------------
def test_a_prefork_worker_killed_mid_settlement_has_its_job_redelivered_to_another(tmp_path):
    trades_to_settle(12)
    queue, marker = f"gl-fault-{uuid.uuid4().hex[:8]}", tmp_path / "paused"
    connection.close()
    # A short visibility timeout so the test need not wait the production 100 s; the mechanism is the same.
    fast = {"CELERY_VISIBILITY_TIMEOUT": "4"}
    with running(
        worker_args(queue),
        tmp_path / "doomed.log",
        GREENLEDGER_PAUSE_AT="settlement.posted",
        GREENLEDGER_PAUSE_FILE=str(marker),
        **fast,
    ) as doomed:
        settlement_run_task.apply_async(queue=queue)
        wait_for(marker.exists, 60, "the worker to reach the crash point", doomed.log)
        doomed.kill()  # the whole worker: parent and pool child
    assert SettlementBatch.objects.count() == 0

    started = time.monotonic()
    with running(worker_args(queue), tmp_path / "healthy.log", **fast) as healthy:  # no re-send
        wait_for(batch_completed, 45, "the broker to hand the job to the new worker", healthy.log)
    assert time.monotonic() - started < 45
    settled_once(12)


def test_a_job_whose_database_connections_are_cut_retries_and_settles_once(tmp_path):
    trades_to_settle(12)
    queue, marker = f"gl-fault-{uuid.uuid4().hex[:8]}", tmp_path / "paused"
    connection.close()
    with running(
        worker_args(queue, pool="solo"),
        tmp_path / "worker.log",
        GREENLEDGER_PAUSE_AT="settlement.posted",
        GREENLEDGER_PAUSE_FILE=str(marker),
        GREENLEDGER_PAUSE_SECONDS="2",
    ) as worker:
        settlement_run_task.apply_async(queue=queue)
        wait_for(marker.exists, 60, "the worker to reach the crash point", worker.log)
        marker.unlink()
        with connection.cursor() as cursor:  # every other connection to this test database: the worker's
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        connection.close()
        wait_for(batch_completed, 45, "the retried job to settle", worker.log)
        assert marker.exists()  # the job ran a second time (a retry, not a re-send)
    settled_once(12)


# --- beat ----------------------------------------------------------------------------------------------------
def only_jobs(*names: str) -> None:
    PeriodicTask.objects.exclude(name__in=names).update(enabled=False)


def due_in(name: str, seconds: float, every: int = 3600) -> None:
    """Give job ``name`` an interval of ``every`` seconds whose next run is ``seconds`` from now."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.get(name=name)
    task.interval, task.crontab, task.enabled = interval, None, True
    task.last_run_at = timezone.now() - timedelta(seconds=every) + timedelta(seconds=seconds)
    task.save()  # and marks the schedule changed, so a running beat reads it


def test_a_job_due_while_redis_is_down_runs_when_redis_is_back(tmp_path):
    trades_to_settle(6)
    only_jobs("audit-seal", "settlement")
    due_in("audit-seal", -1)  # sent at once: beat is connected to Redis before it goes
    connection.close()
    with private_redis(tmp_path) as broker:
        env = {"REDIS_URL": broker.url}
        with running(beat_args(tmp_path, "beat"), tmp_path / "beat.log", **env) as beat:
            wait_for(lambda: broker.queued() >= 1, 30, "beat to send its first job", beat.log)
            due_in("settlement", 4)  # beat reads the change (PeriodicTasks.changed) within a second or so
            connection.close()
            time.sleep(1)
            broker.stop()
            wait_for(lambda: "scheduled job not sent" in beat.text(), 30, "settlement to fall due", beat.log)
            assert "settlement" in beat.text()
            broker.start()  # empty: whatever was queued is gone
            with running(worker_args("celery", pool="solo"), tmp_path / "worker.log", **env) as worker:
                wait_for(batch_completed, 30, "settlement to run once Redis is back", worker.log)
    settled_once(6)


def test_two_beats_send_each_job_once_per_period_and_one_takes_over_when_the_other_dies(tmp_path):
    only_jobs("audit-seal")
    due_in("audit-seal", 0, every=2)
    connection.close()
    with private_redis(tmp_path) as broker:
        env = {"REDIS_URL": broker.url}
        with (
            running(beat_args(tmp_path, "one"), tmp_path / "one.log", **env) as one,
            running(beat_args(tmp_path, "two"), tmp_path / "two.log", **env) as two,
        ):
            wait_for(lambda: "took the lead" in one.text() + two.text(), 20, "a beat to lead", one.log)
            leader, standby = (one, two) if "took the lead" in one.text() else (two, one)
            first = broker.queued()
            time.sleep(6)
            sent = broker.queued() - first
            # every 2 s for 6 s: 3 (2 to 4 at the edges); two beats sending would make 6 or more
            assert 2 <= sent <= 4, sent
            assert "took the lead" not in standby.text()

            leader.kill()
            wait_for(lambda: "took the lead" in standby.text(), 20, "the standby to take over", standby.log)
            before = broker.queued()
            wait_for(lambda: broker.queued() > before, 10, "the new leader to send", standby.log)


# --- the API -------------------------------------------------------------------------------------------------
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in ``tmp_path`` on its own port, holding a copy of the test database."""

    def __init__(self) -> None:
        # Not under tmp_path: pytest's directories are private to this user, and the cluster's is not.
        self.dir = Path(tempfile.mkdtemp(prefix="gl-test-pg-"))
        self.dir.chmod(0o777)
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/greenledger"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root

    def run(self, *args: str, **kwargs: object) -> None:
        subprocess.run([*self.as_owner, *args], check=True, capture_output=True, timeout=60, **kwargs)  # type: ignore[call-overload]

    def init(self, source_url: str) -> None:
        self.run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self.run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "greenledger")
        dump = subprocess.run(
            [str(PG_BIN / "pg_dump"), "--no-owner", source_url], check=True, capture_output=True, timeout=60
        ).stdout
        self.run(str(PG_BIN / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url, input=dump)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "log")
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - a local test server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_api_answers_503_with_retry_after_while_the_database_is_down_and_recovers(tmp_path):
    import json

    ex = make_exchange()
    _, _, trader = ex.trader("Reader", units=10)
    token = token_for(trader)
    connection.close()
    database = PrivatePostgres()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["manage.py", "serve", "--no-worker", "--no-bots", f"--port={port}"]
    try:
        database.init(workers.test_database_url())
        with running(args, tmp_path / "serve.log", DATABASE_URL=database.url, DB_CONN_MAX_AGE="60") as server:
            wait_for(lambda: _answers(base), 30, "the server to start", server.log)
            assert get(f"{base}/api/v1/accounts", token)[0] == 200

            database.stop()
            for _ in range(2):  # the kept connection, then a new one refused
                status, headers, body = get(f"{base}/api/v1/accounts", token)
                assert (status, headers.get("Retry-After")) == (503, "5"), body[:500]
                assert json.loads(body)["error"]["code"] == "service_unavailable"
            status, _, body = get(f"{base}/ready/")
            checks = json.loads(body)["checks"]
            assert (status, checks["database"]["status"], checks["broker"]["status"]) == (503, "unavailable", "ok")
            assert get(f"{base}/health/")[0] == 200

            database.start()
            assert get(f"{base}/api/v1/accounts", token)[0] == 200  # the same process: no restart
            assert get(f"{base}/ready/")[0] == 200
            assert "server_error" not in server.text()
    finally:
        database.destroy()


def _answers(base: str) -> bool:
    try:
        return get(f"{base}/health/")[0] == 200
    except OSError:
        return False
