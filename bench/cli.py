"""``python -m bench``: set up the bench database, run the selected rows, print one table."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import db


@dataclass
class Result:
    name: str
    figure: float
    unit: str
    floor: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.floor else self.figure / self.floor


@dataclass
class Scale:
    """How much each row does. ``full`` is what docs/performance.md reports; ``quick`` a smoke run."""

    pool: int = 1000
    transfers: int = 3000
    transfers_each: int = 1500
    fragmented_sources: int = 10
    fragmented_blocks: int = 1400  # per source (not scaled); the transfers take one at most each, 302 a source
    batches: int = 10
    batch_size: int = 1000
    http_requests: int = 12000
    http_clients: int = 32
    http_workers: int = 4
    # Threads per gunicorn worker (1: sync workers). With more, the concurrent transfers of a worker's threads
    # commit together (exchange.group_commit); on this machine 4 measured no better (docs/performance.md).
    http_threads: int = 1
    reads_history: int = 1_000_000
    reads_samples: int = 200
    settle_trades: int = 100_000
    orders: int = 2000
    audit_events: int = 1_000_000
    events_each: int = 200  # events per stream client in the stream row (100 clients)
    repeat: int = 1

    @classmethod
    def quick(cls) -> Scale:
        return cls(
            pool=40,
            transfers=40,
            transfers_each=10,
            fragmented_sources=2,
            fragmented_blocks=60,
            batches=2,
            batch_size=25,
            http_requests=64,
            http_clients=4,
            http_workers=2,
            reads_history=2000,
            reads_samples=5,
            settle_trades=200,
            orders=40,
            audit_events=2000,
            events_each=10,
        )


@dataclass
class Context:
    scale: Scale
    url: str
    state: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Callable[[Context], list[Result]]] = {}


def case(name: str) -> Callable[[Callable[[Context], list[Result]]], Callable[[Context], list[Result]]]:
    def register(fn: Callable[[Context], list[Result]]) -> Callable[[Context], list[Result]]:
        CASES[name] = fn
        return fn

    return register


def format_table(results: list[Result]) -> str:
    def num(value: float | None) -> str:
        if value is None:
            return ""
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:,.1f}"
        return f"{value:,.2f}"

    header = ("benchmark", "figure", "unit", "floor", "ratio")
    rows = [(r.name, num(r.figure), r.unit, num(r.floor), "" if r.ratio is None else f"{r.ratio:.2f}") for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    align = ["<", ">", "<", ">", ">"]
    lines = [
        "  ".join(f"{h:{a}{w}}" for h, a, w in zip(header, align, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import os

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (pg,) = cursor.fetchone()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL {pg}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny scale: a smoke run in seconds")
    parser.add_argument("--only", default="", help=f"comma-separated rows to run, of: {', '.join(ORDER)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count by this (default 1)")
    parser.add_argument("--database-url", default=None, help=f"bench database (default {db.DEFAULT_URL})")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)

    scale = Scale.quick() if args.quick else Scale()
    if args.scale != 1.0:
        for name, value in vars(scale).items():
            # How fragmented a source is describes the row, not an amount of work: --scale keeps it.
            unscaled = {"http_clients", "http_workers", "http_threads", "repeat", "fragmented_blocks"}
            if isinstance(value, int) and name not in unscaled:
                setattr(scale, name, max(1, int(value * args.scale)))
    selected = [s.strip() for s in args.only.split(",") if s.strip()] or list(ORDER)
    unknown = [s for s in selected if s not in ORDER]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ORDER)}")

    url = db.bench_url(args.database_url)
    try:
        db.require_postgres(url)
    except db.BenchSetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    db.progress(f"creating {db.db_name(url)} and migrating")
    db.recreate(url)
    db.configure_django(url)
    import bench.cases  # noqa: F401 - registers the rows
    from bench.checks import BooksBroken, books_clean

    db.migrate()
    ctx = Context(scale=scale, url=url)
    results: list[Result] = []
    started = time.perf_counter()
    try:
        for name in ORDER:
            if name not in selected:
                continue
            db.progress(f"{name} ...")
            begin = time.perf_counter()
            rows = CASES[name](ctx)
            results.extend(rows)
            for r in rows:
                db.progress(f"  {r.name}: {r.figure:,.2f} {r.unit}" + (f" (floor {r.floor:,.2f})" if r.floor else ""))
            try:
                checked = books_clean(name)
            except BooksBroken as exc:
                print(f"bench: {exc}", file=sys.stderr)
                return 3
            db.progress(f"  reconcile and verify_audit clean ({checked:.1f} s, not timed)")
            db.progress(f"{name} done in {time.perf_counter() - begin:.1f} s")
        info = machine()
    finally:
        ctx.state.get("cleanup", lambda: None)()
        if not args.keep:
            db.drop(url)
    print(f"greenledger bench ({'quick' if args.quick else 'full'} scale): {info}")
    print(format_table(results))
    db.progress(f"total {time.perf_counter() - started:.0f} s")
    return 0


ORDER = [
    "transfers",
    "transfers4",
    "transfers8",
    "batch",
    "http",
    "reads",
    "settlement",
    "matching",
    "engine",
    "audit",
    "events",
]
