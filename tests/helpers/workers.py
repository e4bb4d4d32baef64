"""Real Celery worker processes for crash tests: started on the test database and Redis, killed at will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    host = quote(db.get("HOST") or "127.0.0.1", safe="")  # a socket directory (embedded server) is a path
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, queue: str, env: dict[str, str], log: Path) -> None:
        self.queue = queue
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                f"--queues={queue}",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=WARNING",
                f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def worker(tmp_path: Path, queue: str | None = None, **extra_env: str) -> Iterator[Worker]:
    """A worker on its own queue, on the test database; stopped (or already killed) on exit."""
    queue = queue or f"gl-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    started = Worker(queue, env, tmp_path / f"worker-{queue}.log")
    try:
        yield started
    finally:
        started.stop()


def send(task: Any, queue: str, *args: Any, **kwargs: Any) -> None:
    task.apply_async(args=args, kwargs=kwargs, queue=queue)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")
