"""The live event stream, ``GET /api/v1/events/stream``: server-sent events over a plain ASGI app.

Served by the ASGI process (``config.asgi``: uvicorn in ``make run``, or any ASGI server in a deployment),
where one process holds thousands of idle connections as coroutines rather than threads. Each process
keeps one PostgreSQL connection that LISTENs on ``greenledger_events`` (the projection trigger notifies
each participant with new events at commit, ``exchange/sql/greenledger_event_project.sql``) and a few
that read the events. The database is the truth: a notification only says "look"; each stream reads its
participant's events numbered above the last one it sent, so a lost notification (the listener
reconnecting) delays an event by at most a heartbeat, and never loses or repeats one.

A client authenticates with its API token (``Authorization: Token ...``), may filter by ``types``
(comma-separated), and resumes with ``Last-Event-ID`` (or ``?after=``): it gets every event numbered above
it, once, in order. A comment line is sent every ``EVENTS_HEARTBEAT_SECONDS`` so proxies keep the
connection and clients notice a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import parse_qs

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger("greenledger.stream")

STREAM_PATH = "/api/v1/events/stream"
CHANNEL = "greenledger_events"
PAGE = 500
READERS = 4

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def conninfo() -> dict[str, Any]:
    """psycopg connection arguments for the default database (as Django's settings name it)."""
    from django.db import connections

    db = connections["default"].settings_dict
    params: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "application_name": "greenledger-stream",
    }
    for key in ("sslmode", "sslrootcert", "connect_timeout"):
        if key in db.get("OPTIONS", {}):
            params[key] = db["OPTIONS"][key]
    return {k: v for k, v in params.items() if v is not None}


class Hub:
    """Per process: the listener that wakes streams, and the connections they read through."""

    def __init__(self) -> None:
        self.waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self.readers: asyncio.Queue[psycopg.AsyncConnection[Any]] | None = None
        self.listener: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.sent = 0  # events sent by this process (the bench reads it)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[psycopg.AsyncConnection[Any]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a server started again in this process (tests): its own connections
            self._abandon()
            self.loop, self.readers, self.listener, self.lock = loop, None, None, asyncio.Lock()
        async with self.lock:
            if self.readers is not None:
                return
            readers: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
            for _ in range(READERS):
                readers.put_nowait(await self._connect())
            self.readers = readers
            self.listener = asyncio.create_task(self._listen())

    def _abandon(self) -> None:
        """Close the connections of a loop that is gone (no await possible there any more)."""
        conns = list(self.connections)
        self.connections.clear()
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(**conninfo(), autocommit=True)
        self.connections.add(conn)
        return conn

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.listener
        if self.readers is not None:
            while not self.readers.empty():
                with contextlib.suppress(Exception):
                    await self.readers.get_nowait().close()
        self._abandon()
        self.readers, self.listener = None, None
        self.lock = asyncio.Lock()  # a later start may run on another event loop

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    self.wake_all()  # whatever was notified while no one listened
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self.wake(int(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("event listener lost its connection; reconnecting", exc_info=True)
                self.connections = {c for c in self.connections if not c.closed}
                self.wake_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    def wake(self, participant_id: int) -> None:
        for event in self.waiters.get(participant_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self.waiters.values():
            for event in events:
                event.set()

    def subscribe(self, participant_id: int) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters[participant_id].add(event)
        return event

    def unsubscribe(self, participant_id: int, event: asyncio.Event) -> None:
        waiters = self.waiters.get(participant_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self.waiters[participant_id]

    async def read(self, participant_id: int, after: int, types: list[str]) -> list[tuple[int, str, str]]:
        """The participant's events numbered above ``after`` (of ``types``): (number, type, SSE data)."""
        assert self.readers is not None
        conn = await self.readers.get()
        try:
            sql = (
                "SELECT number, type, created_at, audit_seq, payload::text FROM exchange_participantevent "
                "WHERE participant_id = %s AND number > %s" + (" AND type = ANY(%s)" if types else "") + " "
                "ORDER BY number LIMIT %s"
            )
            params: list[Any] = [participant_id, after, *([types] if types else []), PAGE]
            try:
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall()
            except psycopg.OperationalError:
                await conn.close()
                self.connections.discard(conn)
                conn = await self._connect()
                raise
        finally:
            self.readers.put_nowait(conn)
        return [
            (
                number,
                kind,
                f'{{"id":{number},"type":{json.dumps(kind)},"created_at":"{at.isoformat()}",'
                f'"audit_seq":{seq},"data":{payload}}}',
            )
            for number, kind, at, seq, payload in rows
        ]


hub = Hub()


def _authenticate(raw: str) -> int:
    """The participant of an API token (raises ``AuthenticationFailed``)."""
    from django.db import connection

    from accounts.actors import Actor
    from accounts.authentication import ApiTokenAuthentication

    try:
        user, _ = ApiTokenAuthentication().authenticate_token(raw)
        return Actor.for_user(user).member_participant_id
    finally:
        connection.close()  # this thread's connection: the stream reads through the hub's own


async def _json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Token"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _parse(scope: Scope) -> tuple[str | None, int | None, list[str], bool]:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token = None
    parts = headers.get("authorization", "").split()
    if len(parts) == 2 and parts[0].lower() in {"token", "bearer"}:
        token = parts[1]
    raw_after = headers.get("last-event-id") or (query.get("after") or [""])[0] or "0"
    after = int(raw_after) if raw_after.isdigit() and len(raw_after) <= 18 else None
    types = sorted({t for value in query.get("types", []) + query.get("type", []) for t in value.split(",") if t})
    return token, after, types, bool(query.get("once"))


async def stream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app of ``GET /api/v1/events/stream``."""
    if scope.get("method") != "GET":
        await _json(send, 405, "method_not_allowed", "The event stream is GET only.")
        return
    token, after, types, once = _parse(scope)
    if token is None:
        await _json(send, 401, "not_authenticated", "Authenticate with 'Authorization: Token <token>'.")
        return
    if after is None:
        await _json(send, 400, "invalid", "Last-Event-ID (or after) is an event id: a whole number.")
        return
    from exchange.events import event_types

    unknown = sorted(set(types) - set(event_types()))
    if unknown:
        await _json(send, 400, "unknown_event_type", f"Unknown event types: {', '.join(unknown)}.")
        return
    try:
        participant_id = await sync_to_async(_authenticate)(token)
    except Exception as exc:  # AuthenticationFailed, PermissionDenied (no membership)
        await _json(send, 401, "authentication_failed", str(getattr(exc, "detail", "Invalid token.")))
        return
    await hub.start()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    heartbeat = cast(int, settings.GREENLEDGER["EVENTS_HEARTBEAT_SECONDS"])
    await send({"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True})
    wakeup = hub.subscribe(participant_id)
    gone = asyncio.Event()

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                wakeup.set()
                return

    watcher = asyncio.create_task(watch_disconnect())
    try:
        cursor = after
        while not gone.is_set():
            wakeup.clear()  # before reading: a notification during the read wakes the next wait
            rows = await hub.read(participant_id, cursor, types)
            if rows:
                chunk = "".join(f"id: {n}\nevent: {kind}\ndata: {data}\n\n" for n, kind, data in rows)
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
                cursor = rows[-1][0]
                hub.sent += len(rows)
                if len(rows) == PAGE:
                    continue
            if once:
                break
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=heartbeat)
            except TimeoutError:
                await send({"type": "http.response.body", "body": b": heartbeat\n\n", "more_body": True})
    except OSError:
        pass  # the client went away while we wrote
    finally:
        hub.unsubscribe(participant_id, wakeup)
        watcher.cancel()
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def with_stream(django_app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The ASGI application: the event stream at its path, Django for everything else, and the lifespan."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await hub.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http" and scope["path"] == STREAM_PATH:
            await stream_app(scope, receive, send)
            return
        await django_app(scope, receive, send)

    return application
