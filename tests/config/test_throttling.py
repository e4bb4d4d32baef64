"""Throttling: anonymous traffic never locks valid credentials out, the client address comes from the
proxy's header only when proxies are configured, a made-up Authorization header is still anonymous, and
the API keeps serving (throttling per process, logged) when the shared cache is unreachable."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.services import api_token_create
from config import middleware, throttling
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


class _MidWindowClock:
    """``time`` for the throttles with the wall clock held in the middle of one counting window.

    The windows are fixed minutes of the wall clock: a test's requests that straddle a minute's end would be
    counted in two windows (the schema takes a good part of a second to render, more on a loaded machine), so
    whether the last one is refused would depend on when the test runs. ``monotonic`` (the outage back-off)
    is the real one."""

    monotonic = staticmethod(time.monotonic)

    @staticmethod
    def time() -> float:
        return 1_800_000_030.0  # 30 s into its minute


@pytest.fixture(autouse=True)
def _one_window(monkeypatch):
    monkeypatch.setattr(throttling, "time", _MidWindowClock)
    monkeypatch.setattr(middleware, "time", _MidWindowClock)


@pytest.fixture(autouse=True)
def _clean_counters():
    cache.clear()
    throttling._local.clear()
    throttling._shared_down_until = 0.0
    throttling._last_logged = 0.0
    yield
    cache.clear()
    throttling._local.clear()
    throttling._shared_down_until = 0.0


def limits(anon: int = 1_000_000, token: int = 1_000_000):
    return override_settings(
        GREENLEDGER={**settings.GREENLEDGER, "THROTTLE_ANON_PER_MINUTE": anon, "THROTTLE_PER_MINUTE": token}
    )


def proxies(count: int):
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": count})


def a_token() -> str:
    membership = MembershipFactory()
    return api_token_create(actor=Actor.system("test"), user=membership.user, name="t")[1]


def test_anonymous_traffic_from_an_address_never_throttles_a_valid_token_from_it():
    token = a_token()
    anonymous, valid = APIClient(), APIClient()
    valid.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with limits(anon=3):
        flood = [anonymous.get("/api/v1/assets").status_code for _ in range(4)]
        guesses = [anonymous.get("/api/v1/", HTTP_AUTHORIZATION="Token gl_0000_guess").status_code for _ in range(2)]
        served = [valid.get("/api/v1/").status_code for _ in range(5)]
    assert flood == [401, 401, 401, 429]
    assert guesses == [429, 429]  # guessing stays throttled
    assert served == [200] * 5


def test_a_logged_in_session_is_not_throttled_by_its_addresss_anonymous_traffic():
    session = Client()
    session.force_login(MembershipFactory().user)
    with limits(anon=2):
        flood = [APIClient().get("/api/v1/assets").status_code for _ in range(3)]
        served = session.get("/api/v1/")
    assert flood == [401, 401, 429]
    assert served.status_code == 200


def test_valid_tokens_are_still_throttled_per_token():
    valid = APIClient()
    valid.credentials(HTTP_AUTHORIZATION=f"Token {a_token()}")
    with limits(anon=1, token=2):
        APIClient().get("/api/v1/assets")  # the address is over its anonymous limit
        assert [valid.get("/api/v1/").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Digest x", "Token", "whatever", "Bearer"])
def test_a_non_token_authorization_header_is_counted_as_anonymous(header):
    client = APIClient()
    with limits(anon=2):
        codes = [client.get("/api/schema/", HTTP_AUTHORIZATION=header).status_code for _ in range(3)]
    assert codes[-1] == 429
    assert codes[:2] != [429, 429]


def test_without_proxies_a_forwarded_for_header_is_ignored():
    client = APIClient()
    with limits(anon=2), proxies(0):
        codes = [client.get("/api/v1/assets", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(3)]
    assert codes == [401, 401, 429]  # a client can't dodge its limit by writing a new address each time


def test_behind_a_proxy_each_client_address_is_counted_apart():
    # Every request reaches the app from the proxy's address; the proxy appends the client's.
    client = APIClient(REMOTE_ADDR="10.0.0.2")
    with limits(anon=2), proxies(1):
        first = [client.get("/api/v1/assets", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code for _ in range(3)]
        second = client.get("/api/v1/assets", HTTP_X_FORWARDED_FOR="203.0.113.8")
        # A client-written entry before the proxy's doesn't change the address the proxy saw.
        forged = client.get("/api/v1/assets", HTTP_X_FORWARDED_FOR="203.0.113.99, 203.0.113.7")
    assert first == [401, 401, 429]
    assert second.status_code == 401
    assert forged.status_code == 429


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down():
    """The shared cache is a Redis nobody listens for."""
    location = f"redis://127.0.0.1:{closed_port()}/0"
    backend = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": location,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    with override_settings(CACHES={"default": backend}):
        yield


def test_the_api_serves_through_a_redis_outage_and_throttles_per_process(redis_down, caplog):
    token = a_token()
    valid = APIClient()
    valid.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with caplog.at_level(logging.WARNING, logger="greenledger.throttling"), limits(anon=2, token=3):
        served = [valid.get("/api/v1/").status_code for _ in range(4)]
        anonymous = [APIClient().get("/api/v1/assets").status_code for _ in range(3)]
        public = APIClient().get("/api/schema/")
    assert served == [200, 200, 200, 429]  # the per-token limit still holds, counted in this process
    assert anonymous == [401, 401, 429]
    assert public.status_code == 429
    warnings = [r for r in caplog.records if r.name == "greenledger.throttling"]
    assert len(warnings) == 1  # logged once, not once per request
    assert "counting per process" in warnings[0].getMessage()


def test_throttling_returns_to_the_shared_cache_when_it_answers_again(redis_down):
    with limits(token=1_000):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {a_token()}")
        assert client.get("/api/v1/").status_code == 200
    assert throttling._shared_down_until > 0
    throttling._shared_down_until = 0.0  # the retry delay has passed
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        assert throttling.count_request("throttle:probe:1") == 1
        assert cache.get("throttle:probe:1") == 1
