"""The matching engine row: 8 clients placing orders through the engine, each waiting for its acknowledgement
(sent after the commit that holds the order); orders/s and the p99 of the acknowledgement time.

The engine runs as its own process (forked, as ``manage.py run_engine`` would) when ``REDIS_URL`` is set, else as
a thread of this one on the in-process intake. Sells rest and buys cross them, as in the ``matching`` row.

Wall-clock figures on a shared machine move with the other work on it; the CPU time spent per order does much
less, so the row also reports it: the engine's process, the PostgreSQL backend serving it, and the clients'
process (with the in-process intake the engine is a thread of the clients' process, and only the backend's and
the whole process's are reported).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.fixtures import World, give_cash, give_units, holders
from bench.market import PRICE, _ids


def _engine_main(markets: list[str], stop: Any) -> None:
    from django.db import connections

    from exchange.engine.engine import Engine

    connections.close_all()
    engine = Engine(markets)

    def stop_when_told() -> None:
        stop.wait()
        engine.stop()

    threading.Thread(target=stop_when_told, daemon=True).start()
    try:
        engine.run()
    finally:
        connections.close_all()


@dataclass
class EngineRun:
    seconds: float
    latencies: list[float]  # each order's, submission to acknowledgement
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds while the clients ran: engine, postgres, clients


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _backends() -> list[psutil.Process]:
    """The PostgreSQL backends of the bench database other than this process's own: the engine's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in cursor.fetchall()]
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            continue  # the server runs elsewhere, or the backend is gone
    return found


def _sample(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    totals = {}
    for name, members in processes.items():
        try:
            totals[name] = sum(_cpu(p) for p in members)
        except psutil.Error:
            continue
    return totals


def engine_orders(w: World, orders: int, clients: int = 8, traders: int = 20) -> EngineRun:
    """Place ``orders`` through the engine from ``clients`` threads; return the time, each order's latency and
    the CPU time the engine, its database backend and the clients spent."""
    from django.conf import settings
    from django.db import connections

    from exchange.engine import client
    from exchange.engine.transport import transport

    batch = next(_ids)
    sellers = holders(traders, label=f"eseller{batch}")
    buyers = holders(traders, label=f"ebuyer{batch}")
    give_units(w, [s.account for s in sellers], orders)
    give_cash(w, [b.account for b in buyers], orders * PRICE * 2)
    assert w.cea.market is not None  # the bench's instruments belong to a market
    market = w.cea.market.code
    asset_id = w.cea.pk

    ctx = mp.get_context("fork")
    stop: Any = ctx.Event()
    if settings.REDIS_URL:
        connections.close_all()
        runner: Any = ctx.Process(target=_engine_main, args=([market], stop), daemon=True)
    else:
        stop = threading.Event()
        runner = threading.Thread(target=_engine_main, args=([market], stop), daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not transport().is_alive(asset_id):
        if time.monotonic() > deadline:
            raise RuntimeError("the matching engine did not take the bench book")
        time.sleep(0.05)

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        try:
            start.wait()
            for n in range(index, orders, clients):
                people = sellers if n % 2 == 0 else buyers
                who = people[(n // 2) % traders]
                began = time.perf_counter()
                client.place(
                    actor=who.actor,
                    account_id=who.account.pk,
                    asset_id=asset_id,
                    side="sell" if n % 2 == 0 else "buy",
                    mode="listing",
                    price_fen=PRICE,
                    quantity=1 + n % 3 if n % 2 == 0 else 1 + (n - 1) % 3,
                    client_order_id=f"e{batch}-{n}",
                )
                latencies[index].append(time.perf_counter() - began)
        except BaseException as exc:
            errors.append(repr(exc))
            start.abort()

    processes = {"postgres": _backends(), "clients": [psutil.Process(os.getpid())]}
    if isinstance(runner, mp.process.BaseProcess) and runner.pid is not None:
        processes["engine"] = [psutil.Process(runner.pid)]
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    before = _sample(processes)
    start.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - begin
    after = _sample(processes)
    stop.set()
    runner.join(30)
    if errors:
        raise RuntimeError(f"an engine bench client failed: {errors[0]}")
    cpu = {name: after[name] - before[name] for name in after if name in before}
    return EngineRun(seconds, [x for each in latencies for x in each], cpu)
