"""Concurrency helpers: real PostgreSQL connections in threads released together."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection

from core.errors import DomainError


def run_workers(workers: int, work: Callable[[int], list[str]]) -> list[str]:
    """Run ``work(index)`` in ``workers`` threads released together; return every outcome they report.

    Each thread uses its own connection (Django's are per thread) and closes it when done. An
    exception other than a refusal is an outcome too (its repr), so the caller's assertion shows it.
    """
    start = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            start.wait(timeout=30)
            found = work(index)
        except BaseException as exc:  # reported to the main thread
            found = [f"crashed: {exc!r}"]
        finally:
            connection.close()
        with lock:
            outcomes.extend(found)

    threads = [threading.Thread(target=run, args=(i,), name=f"worker-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker is stuck"
    return outcomes


def attempt(call: Callable[[], object]) -> str:
    try:
        call()
    except DomainError as exc:
        return exc.code
    except Exception as exc:  # a deadlock or any other error shows in the outcomes
        return f"error: {exc!r}"
    return "ok"
