"""API throttling: a fixed one-minute window per token, and per client address for anonymous traffic.

Kept apart from ``config.api`` because DRF resolves throttle classes while ``rest_framework.views`` is
being imported.

The counters live in the shared cache (Redis when ``REDIS_URL`` is set), so every web process counts
together. When that cache can't be reached the API keeps serving: counting falls back to a counter in
each process (so a limit holds per process, not across them) until the shared cache answers again, and
the fallback is logged once a minute while it lasts. Throttling never turns a request into a 500.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("greenledger.throttling")

WINDOW_SECONDS = 60
# After a failure the shared cache is left alone this long, so an outage costs one failed connection
# every few seconds per process, not one per request.
RETRY_SHARED_AFTER_SECONDS = 5.0
LOG_EVERY_SECONDS = 60.0

_local = LocMemCache(
    "greenledger-throttle-fallback", {"TIMEOUT": 2 * WINDOW_SECONDS, "OPTIONS": {"MAX_ENTRIES": 10_000}}
)
_state_lock = threading.Lock()
_shared_down_until = 0.0
_last_logged = 0.0


# Redis clients for the cache backends counted in, kept: Django's backend builds a new client object for
# every operation (its set-up, the response callbacks, costs more than the round trip). Writes all go to
# the backend's first server, whatever the key, so one client per backend serves every counter.
_redis_clients: dict[int, tuple[Any, Any]] = {}


def _redis_client(store: Any) -> Any:
    backend = getattr(store, "_cache", None)
    get_client = getattr(backend, "get_client", None)
    if get_client is None:
        return None
    kept = _redis_clients.get(id(backend))
    if kept is None or kept[0] is not backend:
        kept = (backend, get_client(write=True))
        _redis_clients[id(backend)] = kept
    return kept[1]


def _count_in(store: Any, key: str) -> int:
    client = _redis_client(store)
    if client is not None:
        # Redis: the increment and the key's expiry in one round trip (a pipeline), not an ADD that fails
        # for every request after a window's first and then an INCR. INCR creates the key at 1; the expiry
        # is set once (NX), so a window's counter still goes two windows after its first request.
        # make_key, not make_and_validate_key: the keys are ours (``window_key``), and the validation only
        # warns about characters memcached would refuse, one by one, every request.
        name = store.make_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, 2 * WINDOW_SECONDS, nx=True)
        count, _ = pipe.execute()
        return int(count)
    # Any other cache (the in-process one): INCR first, which is all a window's every request but its first
    # needs; ADD (with the expiry) only when the counter doesn't exist yet.
    try:
        return int(store.incr(key))
    except ValueError:  # no counter yet in this window (or it expired)
        pass
    if store.add(key, 1, timeout=2 * WINDOW_SECONDS):
        return 1
    try:
        return int(store.incr(key))  # another thread added it in between
    except ValueError:  # and it expired in between
        store.set(key, 1, timeout=2 * WINDOW_SECONDS)
        return 1


def _peek_in(store: Any, key: str) -> int:
    return int(store.get(key) or 0)


def _shared_failed(exc: Exception) -> None:
    global _shared_down_until, _last_logged
    now = time.monotonic()
    with _state_lock:
        _shared_down_until = now + RETRY_SHARED_AFTER_SECONDS
        log = now - _last_logged >= LOG_EVERY_SECONDS
        if log:
            _last_logged = now
    if log:
        logger.warning(
            "throttle cache unreachable (%s: %s): counting per process until it answers again",
            type(exc).__name__,
            exc,
        )


def _use(operation: Any, key: str) -> int:
    """Run ``operation`` on the shared cache, or on this process's counters while the shared one is down."""
    if time.monotonic() >= _shared_down_until:
        try:
            return operation(cache, key)
        except Exception as exc:  # any cache failure (connection, timeout, protocol) degrades alike
            _shared_failed(exc)
    return operation(_local, key)


def count_request(key: str) -> int:
    """Count one request under ``key`` in the current window; the count so far, this one included."""
    return _use(_count_in, key)


def requests_so_far(key: str) -> int:
    return _use(_peek_in, key)


def window_key(ident: str, now: float) -> str:
    return f"throttle:{ident}:{int(now // WINDOW_SECONDS)}"


def seconds_left(now: float) -> float:
    return WINDOW_SECONDS - (now % WINDOW_SECONDS)


def client_address(request: HttpRequest | Request) -> str:
    """The client's address: ``REMOTE_ADDR``, or with ``NUM_PROXIES`` trusted proxies in front, the address
    the outermost of them saw (counted from the right of X-Forwarded-For, which a client can't forge).

    The rule is DRF's ``NUM_PROXIES``; its default (None) would trust any X-Forwarded-For, so the settings
    always give a number (0 without a proxy)."""
    return str(BaseThrottle().get_ident(request) or "")  # type: ignore[arg-type]  # it reads only META and headers


class ClientThrottle(BaseThrottle):
    """A fixed one-minute window per API token (or logged-in user): one cache increment a request.

    The rate is ``GREENLEDGER["THROTTLE_PER_MINUTE"]``. Over the limit: 429 with Retry-After.
    Unauthenticated traffic is limited per address by ``config.middleware.AnonymousThrottleMiddleware``
    (DRF checks credentials before throttles).
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        config = settings.GREENLEDGER
        token = getattr(request, "auth", None)
        if token is not None and hasattr(token, "prefix"):
            ident, limit = f"token:{token.prefix}", config["THROTTLE_PER_MINUTE"]
        elif request.user and request.user.is_authenticated:
            ident, limit = f"user:{request.user.pk}", config["THROTTLE_PER_MINUTE"]
        else:
            return True
        now = time.time()
        count = count_request(window_key(ident, now))
        self._wait = seconds_left(now)
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
