"""Security headers on every response, a throttle per address on unauthenticated API traffic and the
public registry pages, the JSON 404 on every API path, and the browser-only middleware left out of API
requests that carry a token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from rest_framework.exceptions import AuthenticationFailed

from config.api import error_body, json_404
from config.health import OUTAGE_ERRORS, outage_met
from config.throttling import client_address, count_request, requests_so_far, seconds_left, window_key

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
TOKEN_KEYWORDS = frozenset({"token", "bearer"})
_TOKEN_API = "_greenledger_token_api"  # noqa: S105 - an attribute name, not a secret


def token_api_request(request: HttpRequest) -> bool:
    """Whether this is an API request whose Authorization header names a token (``Token ...`` or
    ``Bearer ...``), valid or not.

    Such a request is authenticated by its token alone: ``accounts.authentication.ApiTokenAuthentication``
    comes first and either authenticates it or refuses it (401), so DRF never falls back to the session for
    it, and what the session and its messages provide is never used.
    """
    known = request.__dict__.get(_TOKEN_API)
    if known is None:
        known = False
        if request.path.startswith("/api/"):
            words = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
            known = bool(words) and words[0].lower() in TOKEN_KEYWORDS
        request.__dict__[_TOKEN_API] = known
    return known


class BrowserOnly:
    """Leaves the middleware it is mixed into out of API requests that carry a token (``token_api_request``).

    Sessions, the session's user and messages serve the admin, the public pages and the browsable API in a
    logged-in browser; a token-authenticated API request reads none of them. Every other request, a
    browser's call of the API with its session included, goes through the middleware as before. Django's
    CSRF middleware is not left out (it costs little, and ``check --deploy`` looks for it by name)."""

    def __call__(self, request: HttpRequest) -> Any:
        if token_api_request(request):
            return self.get_response(request)  # type: ignore[attr-defined]  # the middleware's own
        return super().__call__(request)  # type: ignore[misc]  # the middleware's own


class SessionMiddleware(BrowserOnly, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(BrowserOnly, DjangoAuthenticationMiddleware):
    """Without a session there is no user to read from it: DRF sets the token's user (or the anonymous one
    when it refuses the token) on the request."""


class MessageMiddleware(BrowserOnly, DjangoMessageMiddleware):
    pass


class AnonymousThrottleMiddleware:
    """Limit, per client address, API requests that end without valid credentials, and every request to the
    public registry pages.

    DRF checks credentials before its throttles, so floods of anonymous requests and token guessing would
    never reach them; this counts them here instead (``GREENLEDGER["THROTTLE_ANON_PER_MINUTE"]``). A request
    counts as anonymous by its outcome, not by its headers: whatever ``Authorization`` it sent, if no user
    was authenticated it counts (so a made-up header doesn't slip past). The public registry
    (``/registry/``) needs no login, so each of its requests counts, and its 429 is a page.

    An address over its limit is refused with 429, except a request whose credentials are valid: a valid
    token or a logged-in session is never refused for the anonymous traffic of its address (behind a
    proxy or a NAT many clients share one). Those are throttled per token by ``ClientThrottle``. The
    address is ``config.throttling.client_address`` (``NUM_PROXIES``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        public = request.path == "/" or request.path.startswith(PUBLIC_PREFIXES)
        if not public and not request.path.startswith("/api/"):
            return self.get_response(request)
        try:
            return self._counted(request, public)
        except OUTAGE_ERRORS as exc:  # checking the token or the session's user: the JSON 503 with DEBUG on too
            return outage_met(request, exc)

    def _counted(self, request: HttpRequest, public: bool) -> HttpResponse:
        # An API request with a token has it checked here, once (the API's authentication reuses the
        # outcome): a valid one is never refused for its address's traffic, so its request costs no look at
        # the address's counter. Without a token, the counter is read first, as for an invalid one.
        token_valid = None if public else _token_valid(request)
        now = time.time()
        key = None
        if not token_valid:
            key = window_key(f"anon:{client_address(request)}", now)
            if requests_so_far(key) >= settings.GREENLEDGER["THROTTLE_ANON_PER_MINUTE"] and not (
                token_valid is None and not public and _logged_in(request)
            ):
                return _too_many(public, int(seconds_left(now)) + 1)
        response = self.get_response(request)
        if public or not _logged_in(request):
            count_request(key or window_key(f"anon:{client_address(request)}", now))
        return response


def _too_many(public: bool, wait: int) -> HttpResponse:
    response: HttpResponse
    if public:
        response = HttpResponse(
            f"<!doctype html><title>{_('Too many requests')}</title><h1>{_('Too many requests')}</h1>"
            f"<p>{_('Please try again in %(seconds)s seconds.') % {'seconds': wait}}</p>",
            status=429,
            content_type="text/html; charset=utf-8",
        )
    else:
        response = JsonResponse(
            error_body(
                "throttled", str(_("Too many requests without valid credentials.")), {"retry_after_seconds": wait}
            ),
            status=429,
        )
    response["Retry-After"] = str(wait)
    return response


def _token_valid(request: HttpRequest) -> bool | None:
    """Whether the API token in the Authorization header is valid; None when the header carries no token."""
    if not token_api_request(request):
        return None
    header = request.META["HTTP_AUTHORIZATION"].split()
    if len(header) != 2:
        return None
    from accounts.authentication import ApiTokenAuthentication

    try:
        ApiTokenAuthentication().authenticate_request_token(request, header[1])
    except AuthenticationFailed:
        return False
    return True


def _logged_in(request: HttpRequest) -> bool:
    """Whether a user was authenticated: by the session, or (after the response) by the API, which sets the
    user it authenticated on the request."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)
