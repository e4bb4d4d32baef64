"""Participant events: what projecting them costs a transfer, and how fast the stream delivers them.

The cost row runs the same ``transfer_create`` calls with the projection trigger on and off, alternating
(``ALTER TABLE ... DISABLE TRIGGER`` on the bench database only), so both see the same background load.
The stream row starts the ASGI app under uvicorn in a process of its own, connects 100 clients (each a
participant of its own, authenticated by its token) from one asyncio process, then commits a burst of
events for all of them in one transaction (rows written as the projection writes them, with its NOTIFY)
and times until every client has received every one of its events.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

TRIGGER = "greenledger_event_project"
ROOT = Path(__file__).resolve().parent.parent


def projection(enabled: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE exchange_auditevent {'ENABLE' if enabled else 'DISABLE'} TRIGGER {TRIGGER}")


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "EVENTS_HEARTBEAT_SECONDS": "5"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/", timeout=1)
            return server
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the ASGI server did not start") from None
            time.sleep(0.2)


def burst(participant_ids: list[int], each: int) -> None:
    """Commit ``each`` events for every participant in one transaction, numbered after their last, notified."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH c AS (
                INSERT INTO exchange_participanteventcounter AS c (participant_id, last_number)
                SELECT p, %s FROM unnest(%s::bigint[]) AS p ORDER BY p
                ON CONFLICT (participant_id) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
                RETURNING participant_id, last_number
            )
            INSERT INTO exchange_participantevent (participant_id, number, type, payload, audit_seq, created_at)
            SELECT c.participant_id, c.last_number - %s + g, 'transfer.executed',
                   jsonb_build_object('quantity', g, 'asset', 'CEA-2024'), 0, now()
              FROM c, generate_series(1, %s) AS g
            """,
            [each, participant_ids, each, each],
        )
        cursor.execute(
            "SELECT pg_notify('greenledger_events', p::text) FROM unnest(%s::bigint[]) AS p", [participant_ids]
        )


async def _client(url: str, token: str, after: int, want: int, ready: asyncio.Event, counts: list[int]) -> float:
    import httpx

    got = 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=120)) as http:
        headers = {"Authorization": f"Token {token}", "Last-Event-ID": str(after)}
        async with http.stream("GET", f"{url}/api/v1/events/stream", headers=headers) as response:
            if response.status_code != 200:
                raise RuntimeError(f"stream refused: {response.status_code}")
            counts[0] += 1
            if counts[0] == counts[1]:
                ready.set()
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    got += 1
                    if got >= want:
                        return time.perf_counter()
    raise RuntimeError("stream ended early")


async def stream_clients(url: str, tokens: list[str], afters: list[int], each: int, produce) -> tuple[float, float]:
    ready = asyncio.Event()
    counts = [0, len(tokens)]
    tasks = [asyncio.create_task(_client(url, t, a, each, ready, counts)) for t, a in zip(tokens, afters, strict=True)]
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(0.5)  # every stream has read its backlog (none) and waits
    began = time.perf_counter()
    await asyncio.to_thread(produce)
    ends = await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    return began, max(ends)
