"""The rows of the table, in the order they run. Each returns its results; setup is not timed."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from bench import db
from bench.cli import Context, Result, case
from bench.fixtures import World, give_cash, give_units, holders, world
from bench.parallel import run_parallel
from bench.transfers import Pool, floor_transfers, service_transfers, timed

ROUNDS = 5


def _world(ctx: Context) -> World:
    if "world" not in ctx.state:
        ctx.state["world"] = world()
    return ctx.state["world"]


def _pool(ctx: Context) -> Pool:
    if "pool" not in ctx.state:
        w = _world(ctx)
        db.progress(f"  setup: {ctx.scale.pool} holders with units and cash")
        people = holders(ctx.scale.pool, label="pool")
        accounts = [h.account for h in people]
        give_units(w, accounts, 1_000_000)
        give_cash(w, accounts, 10**12)
        ctx.state["pool"] = Pool(holders=people, cea_id=w.cea.pk, cny_id=w.cny.pk, url=ctx.url)
    return ctx.state["pool"]


def _alternate(rounds: int, first: Callable[[int], float], second: Callable[[int], float]) -> tuple[float, float]:
    """Run the two measurements turn about, ``rounds`` times each; return the median of each.

    Alternating exposes both to the same background load (other work on a shared machine).
    """
    a, b = [], []
    for r in range(rounds):
        a.append(first(r))
        b.append(second(r))
    return statistics.median(a), statistics.median(b)


@case("transfers")
def transfers_one_client(ctx: Context) -> list[Result]:
    pool = _pool(ctx)
    n = max(1, ctx.scale.transfers // ROUNDS)
    floor_transfers(pool, 20, 1)  # warm up both paths (connections, caches, prepared statements)
    service_transfers(pool, 20, 1)

    def floor(r: int) -> float:
        count, seconds = timed(floor_transfers, pool, n, 10 + r)
        return count / seconds

    def svc(r: int) -> float:
        count, seconds = timed(service_transfers, pool, n, 20 + r)
        return count / seconds

    floor_rate, svc_rate = _alternate(ROUNDS, floor, svc)
    return [Result("transfer service, 1 client", svc_rate, "transfers/s", floor=floor_rate)]


@case("transfers4")
def transfers_four_processes(ctx: Context) -> list[Result]:
    pool = _pool(ctx)
    each = max(1, ctx.scale.transfers_each // 3)

    def floor(r: int) -> float:
        count, seconds = run_parallel(
            lambda i, seed: floor_transfers(pool, each, seed), [100 + 10 * r + i for i in range(4)]
        )
        return count / seconds

    def svc(r: int) -> float:
        count, seconds = run_parallel(
            lambda i, seed: service_transfers(pool, each, seed), [200 + 10 * r + i for i in range(4)]
        )
        return count / seconds

    floor_rate, svc_rate = _alternate(3, floor, svc)
    return [
        Result(
            f"transfer service, 4 processes, {len(pool.holders)} accounts",
            svc_rate,
            "transfers/s",
            floor=floor_rate,
        )
    ]
