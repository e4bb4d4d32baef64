"""The benchmark harness runs end to end at tiny scale (``python -m bench --quick``), so that it can't rot.

Its figures mean nothing at this scale; what is checked is that every row runs, on a database of its own,
and that the table prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_bench_prints_one_table_with_every_row():
    url = urlparse(os.environ["DATABASE_URL"])
    bench_db = urlunparse(url._replace(path=f"/gl_bench_test_{os.getpid()}"))

    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--database-url", bench_db],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    assert run.returncode == 0, run.stderr[-3000:]
    table = run.stdout
    for row in (
        "transfer service, 1 client",
        "transfer service, 1 client, source of",
        "fragmented source / fresh source",
        "against the bare entry's floor",
        "transfer service, 4 processes",
        "transfer service, 8 clients (2 processes x 4 threads), group commit",
        "group commit / each its own commit",
        "batch transfers API",
        "transfer API over HTTP",
        "p99 latency",
        "balance read (GET holdings)",
        "first statement page",
        "settlement of 200 trades",
        "matching through order_place",
        "order placement through the matching engine, 8 clients",
        "p99 time to acknowledgement",
        "audit seal",
        "audit verification",
    ):
        assert row in table, table
    assert "[bench]" in run.stderr  # progress goes to stderr, the table alone to stdout
    assert "[bench]" not in table


def test_the_bench_names_what_to_start_without_postgresql():
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--database-url", "postgres://postgres@127.0.0.1:1/gl_bench_none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    assert run.returncode == 2
    assert "PostgreSQL is not reachable" in run.stderr
    assert "pg_ctlcluster" in run.stderr
