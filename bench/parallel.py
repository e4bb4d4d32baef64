"""Run a function in N forked processes that start together (and in threads of each); return the total count and wall
time."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any


def _child(fn: Callable[[int, Any], int], index: int, arg: Any, start: Any, results: Any) -> None:
    from django.db import connections

    try:
        connections.close_all()
        start.wait()
        begin = time.monotonic()
        count = fn(index, arg)
        results.put((index, count, begin, time.monotonic(), None))
    except BaseException:
        results.put((index, 0, 0.0, 0.0, traceback.format_exc()))
    finally:
        connections.close_all()


def run_parallel(fn: Callable[[int, Any], int], args: list[Any], timeout: float = 900) -> tuple[int, float]:
    """``fn(index, arg)`` in one process per arg; returns (sum of counts, seconds from first start to last end)."""
    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("fork")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(fn, i, arg, start, results)) for i, arg in enumerate(args)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    start.set()
    rows = [results.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [r[4] for r in rows if r[4]]
    if errors:
        raise RuntimeError("a bench worker failed:\n" + errors[0])
    total = sum(r[1] for r in rows)
    return total, max(r[3] for r in rows) - min(r[2] for r in rows)


def run_threads(fn: Callable[[int, Any], int], args: list[Any]) -> int:
    """``fn(index, arg)`` in one thread per arg of this process, each on its own connection; returns the sum of
    counts (a thread's failure is raised here)."""
    from django.db import connection

    counts = [0] * len(args)
    errors: list[str] = []

    def run(index: int, arg: Any) -> None:
        try:
            counts[index] = fn(index, arg)
        except BaseException:
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, arg)) for i, arg in enumerate(args)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("a bench thread failed:\n" + errors[0])
    return sum(counts)
