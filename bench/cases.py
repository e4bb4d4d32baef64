"""The rows of the table, in the order they run. Each returns its results; setup is not timed."""

from __future__ import annotations

from bench import db
from bench.cli import Context, Result, case
from bench.fixtures import World, give_cash, give_units, holders, world
from bench.parallel import run_parallel
from bench.transfers import Pool, floor_transfers, service_transfers, timed


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


@case("transfers")
def transfers_one_client(ctx: Context) -> list[Result]:
    pool = _pool(ctx)
    n = ctx.scale.transfers
    floor_transfers(pool, 20, 1)  # warm up both paths (connections, caches, prepared statements)
    service_transfers(pool, 20, 1)
    floor_n, floor_s = timed(floor_transfers, pool, n, 2)
    svc_n, svc_s = timed(service_transfers, pool, n, 2)
    return [Result("transfer service, 1 client", svc_n / svc_s, "transfers/s", floor=floor_n / floor_s)]


@case("transfers4")
def transfers_four_processes(ctx: Context) -> list[Result]:
    pool = _pool(ctx)
    each = ctx.scale.transfers_each
    floor_n, floor_s = run_parallel(lambda i, seed: floor_transfers(pool, each, seed), [101, 102, 103, 104])
    svc_n, svc_s = run_parallel(lambda i, seed: service_transfers(pool, each, seed), [201, 202, 203, 204])
    return [
        Result(
            f"transfer service, 4 processes, {len(pool.holders)} accounts",
            svc_n / svc_s,
            "transfers/s",
            floor=floor_n / floor_s,
        )
    ]
