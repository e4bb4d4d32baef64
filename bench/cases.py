"""The rows of the table, in the order they run. Each returns its results; setup is not timed."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

from bench import db
from bench.cli import Context, Result, case
from bench.fixtures import Holder, World, _free_transfers, give_cash, give_units, holders, world
from bench.parallel import run_parallel, run_threads
from bench.transfers import (
    Pool,
    floor_serial_transfers,
    floor_transfers,
    fragment,
    fragmented_transfers,
    service_transfers,
    timed,
)

ROUNDS = 5


def _world(ctx: Context) -> World:
    if "world" not in ctx.state:
        ctx.state["world"] = world()
    return ctx.state["world"]


def _pool(ctx: Context) -> Pool:
    _free_transfers()  # again: a case before may have published a market's rulebook
    if "pool" not in ctx.state:
        w = _world(ctx)
        db.progress(f"  setup: {ctx.scale.pool} holders with units and cash")
        people = holders(ctx.scale.pool, label="pool")
        accounts = [h.account for h in people]
        give_units(w, accounts, 1_000_000)
        give_cash(w, accounts, 10**12)
        ctx.state["pool"] = Pool(holders=people, cea_id=w.cea.pk, cny_id=w.cny.pk, url=ctx.url)
    return ctx.state["pool"]


def _alternate(rounds: int, *measures: Callable[[int], float]) -> list[float]:
    """Run the measurements turn about, ``rounds`` times each; return the median of each.

    Alternating exposes them all to the same background load (other work on a shared machine).
    """
    runs: list[list[float]] = [[] for _ in measures]
    for r in range(rounds):
        for measure, results in zip(measures, runs, strict=True):
            results.append(measure(r))
    return [statistics.median(results) for results in runs]


@case("transfers")
def transfers_one_client(ctx: Context) -> list[Result]:
    from exchange.models import SerialBlock

    pool = _pool(ctx)
    n = max(1, ctx.scale.transfers // ROUNDS)
    blocks = ctx.scale.fragmented_blocks
    db.progress(f"  setup: {ctx.scale.fragmented_sources} sources of {blocks:,} blocks each")
    sources = holders(ctx.scale.fragmented_sources, label="fragmented")
    fragment(_world(ctx), sources, holders(1, label="fragments")[0], blocks)
    floor_transfers(pool, 20, 1)  # warm up every path (connections, caches, prepared statements)
    floor_serial_transfers(pool, 20, 1)
    service_transfers(pool, 20, 1)
    fragmented_transfers(pool, sources, 20, 1)

    def entry_floor(r: int) -> float:
        count, seconds = timed(floor_transfers, pool, n, 10 + r)
        return count / seconds

    def floor(r: int) -> float:
        count, seconds = timed(floor_serial_transfers, pool, n, 40 + r)
        return count / seconds

    def svc(r: int) -> float:
        count, seconds = timed(service_transfers, pool, n, 20 + r)
        return count / seconds

    def fragmented(r: int) -> float:
        count, seconds = timed(fragmented_transfers, pool, sources, n, 30 + r)
        return count / seconds

    entry_rate, floor_rate, svc_rate, fragmented_rate = _alternate(ROUNDS, entry_floor, floor, svc, fragmented)
    # The fewest blocks a source held at any time: what it holds at the end.
    fewest = min(
        SerialBlock.objects.filter(account=s.account, asset_id=pool.cea_id, state="available").count() for s in sources
    )
    label = f"transfer service, 1 client, source of {fewest:,}+ blocks"
    return [
        # The floor: the same transfer's writes as plain statements (bench/transfers.py).
        Result("transfer service, 1 client", svc_rate, "transfers/s", floor=floor_rate),
        Result(label, fragmented_rate, "transfers/s", floor=floor_rate),
        # The same service against PostgreSQL's least for a balanced entry (no serials, audit event or key).
        Result("  against the bare entry's floor (cash, no event)", svc_rate, "transfers/s", floor=entry_rate),
        # The fragmented source against a fresh one, measured turn about (the target: at least 0.8).
        Result("  fragmented source / fresh source", fragmented_rate / svc_rate, "ratio"),
    ]


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


#: The transfers8 row's clients: processes x threads, as gunicorn --workers 2 --threads 4 serves 8 at once.
CLIENT_PROCESSES = 2
CLIENT_THREADS = 4


@case("transfers8")
def transfers_eight_clients(ctx: Context) -> list[Result]:
    """Eight concurrent clients: the floors in eight processes, each transfer its own commit; the service in two
    processes of four threads, whose concurrent transfers commit together (``exchange.group_commit``), and the
    same clients with group commit off, measured turn about."""
    from exchange.group_commit import transfer_group

    pool = _pool(ctx)
    each = max(1, ctx.scale.transfers_each // 3)
    clients = CLIENT_PROCESSES * CLIENT_THREADS

    def floor(r: int) -> float:
        count, seconds = run_parallel(
            lambda i, seed: floor_serial_transfers(pool, each, seed), [300 + 10 * r + i for i in range(clients)]
        )
        return count / seconds

    def entry_floor(r: int) -> float:
        count, seconds = run_parallel(
            lambda i, seed: floor_transfers(pool, each, seed), [600 + 10 * r + i for i in range(clients)]
        )
        return count / seconds

    def threads(i: int, seeds: list[int], grouped: bool = True) -> int:
        from django.conf import settings

        settings.GREENLEDGER["TRANSFER_GROUP_COMMIT"] = grouped  # in this forked child only
        group = transfer_group()
        count = run_threads(lambda j, seed: service_transfers(pool, each, seed), seeds)
        if i == 0 and grouped:
            db.progress(f"    {group.grouped / max(group.groups, 1):.1f} transfers a group ({group.groups} groups)")
        return count

    def seeds(base: int) -> list[list[int]]:
        return [[base + CLIENT_THREADS * i + j for j in range(CLIENT_THREADS)] for i in range(CLIENT_PROCESSES)]

    def svc(r: int) -> float:
        count, seconds = run_parallel(threads, seeds(400 + 10 * r))
        return count / seconds

    def alone(r: int) -> float:
        count, seconds = run_parallel(lambda i, s: threads(i, s, grouped=False), seeds(500 + 10 * r))
        return count / seconds

    floor_rate, entry_rate, svc_rate, alone_rate = _alternate(3, floor, entry_floor, svc, alone)
    served = f"{clients} clients ({CLIENT_PROCESSES} processes x {CLIENT_THREADS} threads)"
    return [
        # The floor: the transfer's writes as plain statements (bench/transfers.py), 8 processes, each its own commit.
        Result(f"transfer service, {served}, group commit", svc_rate, "transfers/s", floor=floor_rate),
        Result(f"transfer service, {served}, each its own commit", alone_rate, "transfers/s", floor=floor_rate),
        Result("  group commit against the bare entry's floor", svc_rate, "transfers/s", floor=entry_rate),
        Result("  group commit / each its own commit", svc_rate / alone_rate, "ratio"),
    ]


def _token(holder: Holder) -> str:
    from django.contrib.auth import get_user_model

    from accounts.actors import Actor
    from accounts.services import api_token_create

    assert holder.actor.user_id is not None  # a bench holder acts as a person
    user = get_user_model().objects.get(pk=holder.actor.user_id)
    return api_token_create(actor=Actor.system("bench"), user=user, name="bench")[1]


def _api_client(token: str):
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")


@case("batch")
def batch_transfers(ctx: Context) -> list[Result]:
    import json
    import random

    from exchange.models import Account

    pool = _pool(ctx)
    w = _world(ctx)
    caller = holders(1, label="batcher")[0]
    extra = Account.objects.bulk_create(
        Account(number=f"CN-8{caller.participant.pk:05d}{i:03d}", participant=caller.participant) for i in range(9)
    )
    sources = [caller.account, *extra]
    give_units(w, sources, 10_000_000)
    client = _api_client(_token(caller))
    rng = random.Random(5)
    size = ctx.scale.batch_size

    def body() -> str:
        return json.dumps(
            {
                "transfers": [
                    {
                        "source": rng.choice(sources).number,
                        "destination": rng.choice(pool.holders).account.number,
                        "asset": "CEA-2024",
                        "quantity": rng.randint(1, 5),
                    }
                    for _ in range(size)
                ]
            }
        )

    def post(payload: str) -> None:
        response = client.post("/api/v1/transfers/batch", payload, content_type="application/json")
        if response.status_code != 201:
            raise RuntimeError(f"batch refused: {response.status_code} {response.content[:300]!r}")

    post(body())  # warm up
    rates = []
    for _ in range(ctx.scale.batches):
        payload = body()
        begin = time.perf_counter()
        post(payload)
        rates.append(2 * size / (time.perf_counter() - begin))
    return [
        Result(f"batch transfers API, {size} a batch (median of {len(rates)})", statistics.median(rates), "postings/s")
    ]


@case("http")
def http_transfers(ctx: Context) -> list[Result]:
    import tempfile
    from pathlib import Path

    from bench.http import Client, run_load, start_gunicorn

    pool = _pool(ctx)
    w = _world(ctx)
    n = ctx.scale.http_clients
    people = holders(n, label="http")
    give_units(w, [p.account for p in people], 1_000_000)
    clients = [Client(_token(p), p.account.number) for p in people]
    destinations = [h.account.number for h in pool.holders]
    log = Path(tempfile.gettempdir()) / f"{ctx.url.rsplit('/', 1)[-1]}-gunicorn.log"
    from django.db import connections

    connections.close_all()
    server = start_gunicorn(ctx.url, ctx.scale.http_workers, log, ctx.scale.http_threads)
    try:
        run_load(server.port, clients, destinations, 3)  # warm up every worker and client
        per_client = max(1, ctx.scale.http_requests // n)
        floor, floor_latencies, floor_statuses = run_load(server.port, clients, [], per_client)
        rate, latencies, statuses = run_load(server.port, clients, destinations, per_client)
    finally:
        server.stop()
    bad = [s for s in statuses if s != 201] + [s for s in floor_statuses if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(statuses)} requests failed (statuses {sorted(set(bad))}); see {log}")

    def p(lat: list[float], q: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(len(lat) * q))]

    workers = f"gunicorn {ctx.scale.http_workers} workers"
    if ctx.scale.http_threads > 1:
        workers += f" x {ctx.scale.http_threads} threads"
    return [
        Result(f"constant answer over HTTP (GET /health/), {n} clients, {workers}", floor, "requests/s"),
        Result("  p99 latency", p(floor_latencies, 0.99), "ms"),
        Result(f"transfer API over HTTP, {n} clients, {workers}", rate, "requests/s", floor=floor),
        Result("  p50 latency", p(latencies, 0.5), "ms"),
        Result("  p99 latency", p(latencies, 0.99), "ms"),
    ]


@case("reads")
def reads(ctx: Context) -> list[Result]:
    from bench.history import load_history
    from exchange.models import AccountKind
    from exchange.services.accounts import system_account

    w = _world(ctx)
    long, short = holders(2, label="reader")
    history = ctx.scale.reads_history
    db.progress(f"  setup: {history:,} postings on one account")
    load_history(long.account.pk, system_account(AccountKind.ISSUANCE).pk, w.cny.pk, history)
    load_history(short.account.pk, system_account(AccountKind.ISSUANCE).pk, w.cny.pk, 100)
    results = []
    for who, label in ((long, f"{history:,}"), (short, "100")):
        client = _api_client(_token(who))
        number = who.account.number
        for path, name in (
            (f"/api/v1/accounts/{number}/holdings", "balance read (GET holdings)"),
            (f"/api/v1/accounts/{number}/statement", "first statement page (50 lines)"),
            (f"/api/v1/accounts/{number}/statement?asset=CNY", "first statement page, one asset"),
        ):
            client.get(path)
            samples = []
            for _ in range(ctx.scale.reads_samples):
                begin = time.perf_counter()
                response = client.get(path)
                samples.append(time.perf_counter() - begin)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code}")
            results.append(Result(f"{name}, {label}-posting account", 1000 * statistics.median(samples), "ms"))
    return results


def _market(ctx: Context):
    from bench.market import listed

    if "market" not in ctx.state:
        ctx.state["market"] = listed(_world(ctx))
    return ctx.state["market"]


@case("settlement")
def settlement(ctx: Context) -> list[Result]:
    from bench.market import unsettled_trades
    from exchange.services.settlement import settlement_run

    _, rules = _market(ctx)
    n = ctx.scale.settle_trades
    db.progress(f"  setup: {n:,} unsettled trades")
    unsettled_trades(_world(ctx), rules, n, sellers=max(1, min(200, n // 50)), buyers=max(1, min(1000, n // 10)))
    begin = time.perf_counter()
    batch = settlement_run()
    seconds = time.perf_counter() - begin
    if batch.trades_count != n:
        raise RuntimeError(f"settled {batch.trades_count} trades, expected {n}")
    return [
        Result(f"settlement of {n:,} trades", seconds, "s"),
        Result("  settlement throughput", n / seconds, "trades/s"),
    ]


@case("matching")
def matching(ctx: Context) -> list[Result]:
    from bench.market import matching as run_matching

    _market(ctx)
    n = ctx.scale.orders
    seconds = run_matching(_world(ctx), n)
    return [Result("matching through order_place, 1 client", n / seconds, "orders/s")]


@case("engine")
def engine(ctx: Context) -> list[Result]:
    from bench.engine import engine_orders

    _market(ctx)
    n = ctx.scale.orders
    run = engine_orders(_world(ctx), n, clients=8)
    # That the engine's writes keep every invariant and the audit trail verifies is bench.checks.books_clean's,
    # run after every row (bench/cli.py).
    ordered = sorted(run.latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    per_order = {
        "engine": "  CPU per order: the engine's process",
        "postgres": "  CPU per order: its PostgreSQL backend",
        "clients": "  CPU per order: the clients' process"
        + ("" if "engine" in run.cpu else " (the engine a thread of it: no REDIS_URL)"),
    }
    return [
        Result(
            "order placement through the matching engine, 8 clients (ack after commit)", n / run.seconds, "orders/s"
        ),
        Result("  p99 time to acknowledgement", p99 * 1000, "ms"),
        *[Result(label, run.cpu[name] / n * 1000, "ms") for name, label in per_order.items() if name in run.cpu],
    ]


@case("audit")
def audit(ctx: Context) -> list[Result]:
    from bench.auditload import load_events
    from exchange.services.sealing import audit_seal, audit_verify, default_workers

    n = ctx.scale.audit_events
    audit_seal()  # what the other rows wrote, so that the timed seal is the bulk-loaded events
    db.progress(f"  setup: {n:,} audit events")
    load_events(n)
    begin = time.perf_counter()
    made = audit_seal(max_checkpoints=100_000)
    seal_seconds = time.perf_counter() - begin
    sealed = sum(c.count for c in made)
    begin = time.perf_counter()
    one = audit_verify(workers=1)
    one_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    result = audit_verify(record=True)
    verify_seconds = time.perf_counter() - begin
    if not (result.ok and one.ok):
        raise RuntimeError(f"audit verification failed: {result.failure or one.failure}")
    more = max(1, n // 10)
    load_events(more)
    audit_seal(max_checkpoints=100_000)
    begin = time.perf_counter()
    since = audit_verify(since_last=True, record=True)
    since_seconds = time.perf_counter() - begin
    if not since.ok:
        raise RuntimeError(f"incremental audit verification failed: {since.failure}")
    one_rate = one.events / one_seconds
    return [
        Result(f"audit seal, {sealed:,} events", sealed / seal_seconds, "events/s"),
        Result(f"audit verification, {one.events:,} events, 1 process", one_rate, "events/s"),
        Result(
            f"audit verification, {result.events:,} events, {default_workers()} processes",
            result.events / verify_seconds,
            "events/s",
            floor=one_rate,
        ),
        Result(
            f"audit verification since the last run, {since.events:,} new of {since.events + result.events:,}",
            since_seconds,
            "s",
        ),
    ]


@case("events")
def events(ctx: Context) -> list[Result]:
    """Participant events: the added cost per transfer, and delivery over the stream to 100 clients."""
    from bench.events import burst, projection, start_server, stream_clients
    from bench.http import free_port
    from exchange.selectors.events import latest_number

    pool = _pool(ctx)
    n = max(1, ctx.scale.transfers // ROUNDS)
    service_transfers(pool, 20, 1)  # warm up

    def measure(enabled: bool, r: int) -> float:
        projection(enabled)
        try:
            # Seeds of their own: the calls' Idempotency-Keys follow the seed, and a replay costs nothing.
            count, seconds = timed(service_transfers, pool, n, (40 if enabled else 50) + r)
        finally:
            projection(True)
        return count / seconds

    with_events, without = _alternate(ROUNDS, lambda r: measure(True, r), lambda r: measure(False, r))
    added_us = (1 / with_events - 1 / without) * 1e6

    clients = 100
    each = max(10, ctx.scale.events_each)
    people = holders(clients, label="streamer")
    tokens = [_token(h) for h in people]
    ids = [h.participant.pk for h in people]
    afters = [latest_number(pid) for pid in ids]
    port = free_port()  # a port of its own: benches of other checkouts may run at the same time
    db.progress(f"  stream: {clients} clients, {each:,} events each, server on port {port}")
    server = start_server(ctx.url, port)
    try:
        from django.db import transaction

        def produce() -> None:
            with transaction.atomic():
                burst(ids, each)

        began, ended = asyncio.run(stream_clients(f"http://127.0.0.1:{port}", tokens, afters, each, produce))
    finally:
        server.terminate()
        server.wait(timeout=30)
    rate = clients * each / (ended - began)
    return [
        Result("transfer service, events projected", with_events, "transfers/s", floor=without),
        Result("  added cost of the events per transfer", added_us, "us"),
        Result(f"events over the stream, {clients} clients", rate, "events/s"),
    ]
