"""How orders reach the engine and acknowledgements come back.

With ``REDIS_URL`` (every deployment, the tests, CI): a Redis list per book (``gl:engine:in:<asset id>``) that
clients push requests onto and the engine pops in arrival order, a list per request for its acknowledgement
(``gl:engine:ack:<request id>``, expiring), and a key per owned book that the engine refreshes while it runs
(``gl:engine:alive:<asset id>``): no key, no engine, and the API refuses the order (503 ``engine_unavailable``)
instead of queueing it for nobody. Without ``REDIS_URL`` (``make run`` on a laptop) the same three things live in
this process (``LocalTransport``) and the engine runs as a thread of it, through the same code.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

#: How long an engine's mark on a book lives without being refreshed; the engine refreshes it every second.
ALIVE_SECONDS = 3.0
ACK_KEEP_SECONDS = 60


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


class Transport:
    # --- the client's side -----------------------------------------------------------------------------
    def is_alive(self, asset_id: int) -> bool:
        raise NotImplementedError

    def submit(self, asset_id: int, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def wait_ack(self, request_id: str, timeout: float) -> dict[str, Any] | None:
        raise NotImplementedError

    # --- the engine's side -----------------------------------------------------------------------------
    def mark_alive(self, asset_ids: list[int], owner: str) -> None:
        raise NotImplementedError

    def mark_gone(self, asset_ids: list[int]) -> None:
        raise NotImplementedError

    def take(self, asset_ids: list[int], limit: int, wait: float) -> list[dict[str, Any]]:
        """Up to ``limit`` requests in arrival order per book, waiting up to ``wait`` seconds for the first."""
        raise NotImplementedError

    def ack(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        raise NotImplementedError


class RedisTransport(Transport):
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def is_alive(self, asset_id: int) -> bool:
        return bool(self.redis.exists(f"gl:engine:alive:{asset_id}"))

    def submit(self, asset_id: int, message: dict[str, Any]) -> None:
        self.redis.rpush(f"gl:engine:in:{asset_id}", encode(message))

    def wait_ack(self, request_id: str, timeout: float) -> dict[str, Any] | None:
        got = self.redis.blpop([f"gl:engine:ack:{request_id}"], timeout=max(timeout, 0.01))
        return json.loads(got[1]) if got else None

    def mark_alive(self, asset_ids: list[int], owner: str) -> None:
        pipe = self.redis.pipeline()
        for asset_id in asset_ids:
            pipe.set(f"gl:engine:alive:{asset_id}", owner, px=int(ALIVE_SECONDS * 1000))
        pipe.execute()

    def mark_gone(self, asset_ids: list[int]) -> None:
        if asset_ids:
            self.redis.delete(*[f"gl:engine:alive:{a}" for a in asset_ids])

    def take(self, asset_ids: list[int], limit: int, wait: float) -> list[dict[str, Any]]:
        keys = [f"gl:engine:in:{a}" for a in asset_ids]
        first = self.redis.blpop(keys, timeout=wait)
        if not first:
            return []
        raw = [first[1]]
        pipe = self.redis.pipeline()
        for key in keys:
            pipe.lpop(key, limit)
        for popped in pipe.execute():
            raw.extend(popped or [])
        return [json.loads(r) for r in raw]

    def ack(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        if not replies:
            return
        pipe = self.redis.pipeline()
        for request_id, reply in replies:
            key = f"gl:engine:ack:{request_id}"
            pipe.rpush(key, encode(reply))
            pipe.expire(key, ACK_KEEP_SECONDS)
        pipe.execute()


class LocalTransport(Transport):
    """The same in one process: queues, events and a table of owned books."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.alive: dict[int, float] = {}
        self.acks: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}

    def _slot(self, request_id: str) -> tuple[threading.Event, list[dict[str, Any]]]:
        with self.lock:
            return self.acks.setdefault(request_id, (threading.Event(), []))

    def is_alive(self, asset_id: int) -> bool:
        return self.alive.get(asset_id, 0.0) > time.monotonic()

    def submit(self, asset_id: int, message: dict[str, Any]) -> None:
        self._slot(message["id"])
        self.inbox.put(json.loads(encode(message)))

    def wait_ack(self, request_id: str, timeout: float) -> dict[str, Any] | None:
        event, box = self._slot(request_id)
        event.wait(timeout)
        with self.lock:
            if box:
                self.acks.pop(request_id, None)
                return box[0]
        return None

    def mark_alive(self, asset_ids: list[int], owner: str) -> None:
        until = time.monotonic() + ALIVE_SECONDS
        for asset_id in asset_ids:
            self.alive[asset_id] = until

    def mark_gone(self, asset_ids: list[int]) -> None:
        for asset_id in asset_ids:
            self.alive.pop(asset_id, None)

    def take(self, asset_ids: list[int], limit: int, wait: float) -> list[dict[str, Any]]:
        try:
            taken = [self.inbox.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(taken) < limit:
            try:
                taken.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return taken

    def ack(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        for request_id, reply in replies:
            event, box = self._slot(request_id)
            box.append(reply)
            event.set()


_local = LocalTransport()
_override: Transport | None = None


def transport() -> Transport:
    """Redis when ``REDIS_URL`` is set, else this process's own (``make run`` without Redis)."""
    if _override is not None:
        return _override
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return _local
    return _redis(url)


_clients: dict[str, RedisTransport] = {}


def _redis(url: str) -> RedisTransport:
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = RedisTransport(url)
    return client


def use_transport(chosen: Transport | None) -> None:
    """Make every client and engine of this process use ``chosen`` (None: the default again)."""
    global _override
    _override = chosen
