"""Security headers on every response, a throttle per address on unauthenticated API traffic and the
public registry pages, and the JSON 404 on every API path."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.api import json_404

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    # The API docs page starts Swagger UI with an inline script; everything it loads is served from here.
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        if request.path.startswith("/api/"):
            # Holdings and statements must not linger in shared caches.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class ApiNotFoundMiddleware:
    """An /api/ path no route matches is the JSON 404 body. With DEBUG on (``make run``) Django answers it
    with its HTML technical 404 page instead of calling ``handler404`` (``config.api.json_404``); this
    answers it as the API does either way. It sits inside CommonMiddleware, which still redirects a path
    missing only its trailing slash."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No resolver_match: no route matched. A view's own 404 is left as its renderer made it (the
        # browsable API's page in a browser).
        if response.status_code == 404 and request.resolver_match is None and request.path.startswith("/api/"):
            return json_404(request)
        return response


PUBLIC_PREFIXES = ("/registry/",)


class AnonymousThrottleMiddleware:
    """Limit, per client address, API requests that carry no credentials or fail authentication, and every
    request to the public registry pages.

    DRF checks credentials before its throttles, so floods of anonymous requests and token guessing would
    never reach them; this counts them here instead (``GREENLEDGER["THROTTLE_ANON_PER_MINUTE"]``) and answers
    429 once an address is over. Requests with a valid token are throttled per token by the API. The public
    registry (``/registry/``) needs no login, so each of its requests counts, and its 429 is a page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        public = request.path.startswith(PUBLIC_PREFIXES)
        if not public and not request.path.startswith("/api/"):
            return self.get_response(request)
        now = time.time()
        key = f"throttle:anon:{request.META.get('REMOTE_ADDR', '')}:{int(now // 60)}"
        limit = settings.GREENLEDGER["THROTTLE_ANON_PER_MINUTE"]
        if (cache.get(key) or 0) >= limit:
            wait = int(60 - now % 60) + 1
            response: HttpResponse
            if public:
                response = HttpResponse(
                    f"<!doctype html><title>Too many requests</title><h1>Too many requests</h1>"
                    f"<p>Please try again in {wait} seconds.</p>",
                    status=429,
                    content_type="text/html; charset=utf-8",
                )
            else:
                response = JsonResponse(
                    {
                        "error": {
                            "code": "throttled",
                            "message": "Too many requests without valid credentials.",
                            "details": {"retry_after_seconds": wait},
                        }
                    },
                    status=429,
                )
            response["Retry-After"] = str(wait)
            return response
        response = self.get_response(request)
        unauthenticated = "HTTP_AUTHORIZATION" not in request.META and not _logged_in(request)
        if (public or response.status_code == 401 or unauthenticated) and not cache.add(key, 1, timeout=120):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=120)
        return response


def _logged_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)
