"""The projection's cost per transfer in server CPU, which a shared machine's load does not swamp as it does wall time.

    .venv/bin/python -m bench.projection_cpu [transfers per turn, default 30] [turns, default 36]

Runs ``transfer_create`` (as the transfer service row) on a database of its own, in turns of a few dozen
calls with the projection trigger on and off, and sums the CPU time of the PostgreSQL backend serving the
calls (``/proc/<pid>/stat``, so the server must run on this machine). Short turns alternate faster than the
tables grow, so both sides see the same table sizes. The statement-level timing of ``pg_stat_user_functions``
counts time spent waiting for a core as the function's; this does not. docs/performance.md, Events.
"""

from __future__ import annotations

import os
import sys

from bench import db

URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gl_bench").rstrip("/") + "_cpu"


def backend_cpu(pid: int) -> float:
    """The CPU seconds (user and system) the backend process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    each = int(argv[0]) if argv else 30
    turns = int(argv[1]) if len(argv) > 1 else 36
    db.recreate(URL)
    db.configure_django(URL)
    from django.db import connection

    import bench.cases as cases
    from bench.cli import Context, Scale
    from bench.events import projection
    from bench.transfers import service_transfers

    db.migrate()
    try:
        pool = cases._pool(Context(scale=Scale.quick(), url=URL))
        service_transfers(pool, 50, 1)  # warm up
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        spent = {True: 0.0, False: 0.0}
        for turn in range(turns):
            for enabled in (True, False):
                projection(enabled)
                try:
                    began = backend_cpu(pid)
                    service_transfers(pool, each, 1000 + 2 * turn + enabled)
                    spent[enabled] += backend_cpu(pid) - began
                finally:
                    projection(True)
        with_events, without = (spent[e] / (each * turns) * 1e6 for e in (True, False))
        print(
            f"server CPU per transfer: {with_events:,.0f} us with the projection, {without:,.0f} us without, "
            f"{with_events - without:,.0f} us added ({(with_events / without - 1) * 100:.1f} %)"
        )
    finally:
        connection.close()
        db.drop(URL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
