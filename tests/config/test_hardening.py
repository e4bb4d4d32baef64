"""Hardening: throttling, admin login lockout, production settings, security headers, no debug pages."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.services import api_token_create
from tests.factories import MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cleared_cache")]


def token_client() -> APIClient:
    membership = MembershipFactory()
    _, token = api_token_create(actor=Actor.system("test"), user=membership.user, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_over_its_rate_gets_429_with_retry_after():
    client = token_client()
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "THROTTLE_PER_MINUTE": 3}):
        codes = [client.get("/api/v1/").status_code for _ in range(4)]
        refused = client.get("/api/v1/")
    assert codes == [200, 200, 200, 429]
    assert refused.json()["error"]["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 61


def test_tokens_are_throttled_separately():
    first, second = token_client(), token_client()
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "THROTTLE_PER_MINUTE": 2}):
        assert [first.get("/api/v1/").status_code for _ in range(3)] == [200, 200, 429]
        assert second.get("/api/v1/").status_code == 200


def test_anonymous_requests_are_throttled_by_address():
    client = APIClient()
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "THROTTLE_ANON_PER_MINUTE": 2}):
        codes = [client.get("/api/v1/assets").status_code for _ in range(3)]
        refused = client.get("/api/v1/assets")
    assert codes == [401, 401, 429]
    assert refused.json()["error"]["code"] == "throttled"


def test_guessing_tokens_is_throttled_by_address_but_valid_tokens_are_not():
    guesser, valid = APIClient(), token_client()
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "THROTTLE_ANON_PER_MINUTE": 3}):
        guesses = [guesser.get("/api/v1/", HTTP_AUTHORIZATION=f"Token gl_{i:04d}_guess").status_code for i in range(4)]
        assert guesses == [401, 401, 401, 429]
        # A valid token from another address is unaffected (the test client's address is shared, so reset it).
        cache.clear()
        assert [valid.get("/api/v1/").status_code for _ in range(5)] == [200] * 5


def test_admin_login_locks_out_after_repeated_failures(client):
    user = UserFactory(username="officer", is_staff=True, is_superuser=True)
    user.set_password("the right password 42")
    user.save()
    codes = [
        client.post("/admin/login/?next=/admin/", {"username": "officer", "password": "wrong"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert codes == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form with an error, then locked
    locked = client.post("/admin/login/?next=/admin/", {"username": "officer", "password": "the right password 42"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_successful_login_resets_the_failures(client):
    user = UserFactory(username="clerk", is_staff=True)
    user.set_password("the right password 42")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/admin/login/?next=/admin/", {"username": "clerk", "password": "wrong"})
    ok = client.post("/admin/login/?next=/admin/", {"username": "clerk", "password": "the right password 42"})
    assert ok.status_code == 302
    client.logout()
    # Had the count survived the success, these failures would take it past the limit and lock the clerk out.
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/admin/login/?next=/admin/", {"username": "clerk", "password": "wrong"})
    again = client.post("/admin/login/?next=/admin/", {"username": "clerk", "password": "the right password 42"})
    assert again.status_code == 302
    assert "_auth_user_id" in client.session


def test_security_headers_on_api_and_admin(client):
    for path in ("/api/v1/", "/admin/login/"):
        response = client.get(path)
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert client.get("/api/v1/").headers["Cache-Control"] == "no-store"


def test_unknown_api_path_is_a_json_404_and_admin_paths_are_html(client):
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/transactions/99999999999999999999"),  # too long for the id converter
        ("get", "/api/v1/no-such-thing"),
        ("post", "/api/v1/no-such-thing"),  # no CSRF token either: still the 404, not a CSRF page
        ("get", "/api/v2/"),
    ],
)
def test_an_unknown_api_path_is_a_json_404_even_in_debug(method, path):
    client = Client(enforce_csrf_checks=True)
    with override_settings(DEBUG=True):
        response = getattr(client, method)(path)
        page = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "No such endpoint or object.", "details": {}}}
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_an_api_path_without_its_slash_still_redirects():
    assert Client().get("/api/v1").status_code == 301


def test_a_views_own_404_keeps_its_rendering_in_debug():
    client = Client()
    client.force_login(MembershipFactory().user)
    with override_settings(DEBUG=True):
        page = client.get("/api/v1/orders/987654321", HTTP_ACCEPT="text/html")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")  # the browsable API's page


def test_api_docs_use_assets_served_here(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b"drf_spectacular_sidecar" in page.content
    assert b"cdn.jsdelivr" not in page.content


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "GREENLEDGER_ENV", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        GREENLEDGER_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="registry.example.cn",
        DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=REDIS_URL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# `check` connects to neither: any Redis URL does.
REDIS_URL = "redis://127.0.0.1:6379/0"
GOOD_KEY = "k" + secrets.token_urlsafe(64)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "1", "SECRET_KEY": GOOD_KEY, "REDIS_URL": REDIS_URL}, "DEBUG must be off"),
        ({"DEBUG": "on", "SECRET_KEY": GOOD_KEY, "REDIS_URL": REDIS_URL}, "DEBUG must be off"),
        ({"SECRET_KEY": GOOD_KEY}, "REDIS_URL must be set"),
        ({"SECRET_KEY": GOOD_KEY, "REDIS_URL": ""}, "REDIS_URL must be set"),
        (
            {"SECRET_KEY": "insecure-development-key-set-SECRET_KEY-in-production", "REDIS_URL": REDIS_URL},
            "SECRET_KEY must be set",
        ),
        ({"SECRET_KEY": "django-insecure-" + "x" * 50, "REDIS_URL": REDIS_URL}, "published development key"),
        ({"SECRET_KEY": "changeme", "REDIS_URL": REDIS_URL}, "too short"),
        ({"SECRET_KEY": "ab" * 40, "REDIS_URL": REDIS_URL}, "too short or too simple"),
    ],
    ids=["debug-1", "debug-on", "no-redis", "empty-redis", "dev-key", "django-insecure", "short", "simple"],
)
def test_production_refuses_to_start_when_unsafe(tmp_path, env, message):
    result = _manage(
        "check",
        GREENLEDGER_ENV="production",
        ALLOWED_HOSTS="registry.example.cn",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        **env,
    )
    assert result.returncode != 0
    assert "GREENLEDGER_ENV=production refuses to start" in result.stderr
    assert message in result.stderr


@pytest.mark.slow
def test_development_still_starts_with_debug_and_no_redis(tmp_path):
    result = _manage("check", DEBUG="1", DATABASE_URL=os.environ["DATABASE_URL"])
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _manage("check", GREENLEDGER_ENV="production", DATABASE_URL=os.environ["DATABASE_URL"])
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.slow
def test_production_refuses_to_start_without_a_database_url(tmp_path):
    # Production never falls back to the embedded server: nothing is started, nothing is written to var/.
    result = _manage(
        "check",
        GREENLEDGER_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL="",
        GREENLEDGER_VAR_DIR=str(tmp_path / "var"),
    )
    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr
    assert not (tmp_path / "var").exists()


@pytest.mark.slow
def test_a_database_other_than_postgresql_is_refused(tmp_path):
    result = _manage("check", DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert result.returncode != 0
    assert "DATABASE_URL must name a PostgreSQL database (postgres://...), not sqlite:." in result.stderr
    assert not (tmp_path / "x.sqlite3").exists()

    # The refusal names the scheme only: a URL's password never reaches the logs.
    result = _manage("check", DATABASE_URL="mysql://app:s3cret-password@db.internal/greenledger")
    assert result.returncode != 0
    assert "not mysql:." in result.stderr
    assert "s3cret-password" not in result.stderr


@pytest.mark.parametrize("path", ["/api/v1/transfers", "/api/v1/orders", "/api/v1/transfers/batch"])
def test_a_body_nested_too_deeply_for_the_decoder_is_a_400(path):
    client = token_client()
    deep = "[" * 5000 + "]" * 5000
    response = client.post(path, deep, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize("cursor", ["garbage", "cD0xMjM", "cj14"])  # not base64; unpadded; "r=x"
def test_a_bad_pagination_cursor_is_a_400(cursor):
    response = token_client().get(f"/api/v1/accounts?cursor={cursor}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
    assert set(response.json()["error"]["details"]) == {"cursor"}


def test_an_unknown_format_is_a_400_and_known_ones_still_answer():
    client = token_client()
    unknown = client.get("/api/v1/accounts?format=xml")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "invalid"
    assert set(unknown.json()["error"]["details"]) == {"format"}
    assert client.get("/api/v1/accounts?format=json").status_code == 200
