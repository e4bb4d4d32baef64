"""API throttling: a fixed one-minute window per token. Kept apart from ``config.api`` because DRF
resolves throttle classes while ``rest_framework.views`` is being imported."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle


class ClientThrottle(BaseThrottle):
    """A fixed one-minute window per API token (or logged-in user): one cache increment a request.

    The rate is ``GREENLEDGER["THROTTLE_PER_MINUTE"]``; with a shared cache (Redis) every web process counts
    together. Over the limit: 429 with Retry-After. Unauthenticated traffic is limited per address by
    ``config.middleware.AnonymousThrottleMiddleware`` (DRF checks credentials before throttles).
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
        window = int(now // 60)
        key = f"throttle:{ident}:{window}"
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=120)
            count = 1
        self._wait = 60 - (now % 60)
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
