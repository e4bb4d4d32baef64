"""API requests that carry a token skip the browser-only middleware (sessions, CSRF, the session's user,
messages) and the content negotiation's parsing when the client states no preference; everything a client
sees stays as it was: headers, the language of messages, refusals, and CSRF for a browser's session."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

from accounts.actors import Actor
from accounts.services import api_token_create
from config.middleware import token_api_request
from config.negotiation import ContentNegotiation
from exchange.api.holdings import HoldingsApi, StatementApi
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cleared_cache")]


def a_member_with_token():
    membership = MembershipFactory()
    return membership, api_token_create(actor=Actor.system("test"), user=membership.user, name="t")[1]


@pytest.mark.parametrize(
    ("path", "header", "expected"),
    [
        ("/api/v1/accounts", "Token gl_x_y", True),
        ("/api/v1/accounts", "bearer gl_x_y", True),
        ("/api/v1/accounts", "Token", True),  # refused by the token's authentication, never by the session
        ("/api/v1/accounts", "Basic dXNlcjpwYXNz", False),
        ("/api/v1/accounts", "   ", False),
        ("/api/v1/accounts", None, False),
        ("/admin/", "Token gl_x_y", False),
        ("/registry/", "Token gl_x_y", False),
    ],
)
def test_which_requests_count_as_token_api_requests(path, header, expected):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    assert token_api_request(RequestFactory().get(path, **extra)) is expected


def test_a_token_request_gets_the_same_headers_and_no_cookie():
    _membership, token = a_member_with_token()
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/v1/accounts", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Language"] == "zh-hans"
    assert "Accept-Language" in response["Vary"]
    assert "Cookie" not in response["Vary"]
    assert not response.cookies


@pytest.mark.parametrize(
    ("language", "message"),
    [("zh-CN,zh;q=0.9", "令牌无效、已过期或已吊销。"), ("en-US,en;q=0.9", "Invalid, expired or revoked token.")],
)
def test_a_refused_token_is_told_so_in_the_clients_language(language, message):
    response = Client().get(
        "/api/v1/accounts", HTTP_AUTHORIZATION="Token gl_abcd_nosuchsecret", HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response.json()["error"]["message"] == message


def test_a_browser_session_still_needs_its_csrf_token_for_unsafe_api_calls():
    membership, token = a_member_with_token()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(membership.user)
    refused = browser.post("/api/v1/accounts", {"name": "x"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    # The same browser's request with a token is the token's: no CSRF check, as before.
    with_token = browser.post(
        "/api/v1/accounts", {"name": "x"}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert with_token.status_code == 201


@pytest.mark.parametrize("view", [HoldingsApi, StatementApi])
@pytest.mark.parametrize("accept", [None, "*/*"])
def test_the_negotiation_shortcut_answers_what_drf_answers(view, accept):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(RequestFactory().get("/api/v1/accounts/CN-1/holdings", **extra))
    renderers = [renderer() for renderer in view.renderer_classes]
    ours = ContentNegotiation().select_renderer(request, renderers)
    drfs = DefaultContentNegotiation().select_renderer(request, renderers)
    assert (type(ours[0]), ours[1]) == (type(drfs[0]), drfs[1])


def test_an_explicit_choice_still_goes_through_negotiation():
    _membership, token = a_member_with_token()
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/accounts", HTTP_ACCEPT="text/html").status_code == 200  # the browsable API
    assert client.get("/api/v1/accounts", HTTP_ACCEPT="text/html")["Content-Type"].startswith("text/html")
    assert client.get("/api/v1/accounts?format=xml").status_code == 400
