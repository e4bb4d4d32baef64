"""/health/ and /ready/, and a database outage answered 503 with Retry-After, not 500 (in process; the
real outage with a server process is in tests/reliability/test_fault_injection.py)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from accounts.authentication import ApiTokenAuthentication
from config import health

pytestmark = pytest.mark.django_db


def test_health_is_ok_without_touching_anything(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/health/")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_names_each_dependency_and_its_status():
    response = Client().get("/ready/")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "cache"}
    assert {c["status"] for c in body["checks"].values()} == {"ok"}


def test_ready_is_503_and_names_the_dependency_that_does_not_answer(monkeypatch, settings):
    from config.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = Client().get("/ready/")

    body = response.json()
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["status"] == "unavailable"
    assert (body["checks"]["database"]["status"], body["checks"]["cache"]["status"]) == ("ok", "ok")


def _database_down(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1 port 5432 failed: Connection refused")


def test_an_api_request_that_meets_a_database_outage_is_a_503_with_retry_after(monkeypatch):
    monkeypatch.setattr(ApiTokenAuthentication, "authenticate", _database_down)

    response = Client(raise_request_exception=False).get("/api/v1/accounts", HTTP_AUTHORIZATION="Token x")

    assert response.status_code == 503
    assert response["Retry-After"] == str(health.RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.json()["error"]["details"] == {"retry_after_seconds": health.RETRY_AFTER_SECONDS}


def test_an_outage_met_outside_a_view_is_a_503_too(monkeypatch):
    from django.contrib.sessions.middleware import SessionMiddleware

    monkeypatch.setattr(SessionMiddleware, "process_request", _database_down)

    response = Client(raise_request_exception=False).get("/api/v1/accounts")

    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.parametrize("debug", [False, True])
def test_an_outage_met_checking_the_api_token_is_the_json_503_with_debug_on_too(monkeypatch, settings, debug):
    """The token is checked in a middleware (config.middleware.AnonymousThrottleMiddleware), where with DEBUG
    on (make run) Django answered an exception with its HTML debug page, not handler500."""
    settings.DEBUG = debug
    monkeypatch.setattr(ApiTokenAuthentication, "authenticate_request_token", _database_down)

    response = Client(raise_request_exception=False).get("/api/v1/accounts", HTTP_AUTHORIZATION="Token x")

    assert (response.status_code, response["Retry-After"]) == (503, str(health.RETRY_AFTER_SECONDS))
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "service_unavailable"


def test_any_other_error_is_still_a_500_server_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ApiTokenAuthentication, "authenticate", broken)

    response = Client(raise_request_exception=False).get("/api/v1/accounts", HTTP_AUTHORIZATION="Token x")

    assert (response.status_code, response.json()["error"]["code"]) == (500, "server_error")
