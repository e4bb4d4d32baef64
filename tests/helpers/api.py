"""API clients for tests: authenticated with a real API token, as a trading client would be."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.services import api_token_create


def token_for(actor: Actor) -> str:
    user = get_user_model().objects.get(pk=actor.user_id)
    _, text = api_token_create(actor=Actor.system("tests"), user=user, name="tests")
    return text


def client_for(actor: Actor | None = None, *, token: str | None = None) -> APIClient:
    """A client sending ``Authorization: Token ...`` for the actor's user (anonymous with neither)."""
    client = APIClient()
    if actor is not None and token is None:
        token = token_for(actor)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def admin_client_for(actor: Actor) -> Client:
    """A browser client logged in to the admin as the actor's user, made staff and superuser."""
    user = get_user_model().objects.get(pk=actor.user_id)
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def error_of(response: Any) -> tuple[int, str]:
    """(status, error code) of a refusal, checking the body has the shape in docs/architecture.md, Errors."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


def api_routes() -> dict[tuple[str, str], type]:
    """Every (method, route) under /api/v1/ that a view answers, with the view class (routes as Django writes
    them, e.g. ``api/v1/orders/<id:pk>/cancel``)."""
    found: dict[tuple[str, str], type] = {}

    def walk(patterns: Any, prefix: str = "") -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
                continue
            route = prefix + str(p.pattern)
            if not route.startswith("api/v1/"):
                continue
            view = getattr(p.callback, "view_class", None) or getattr(p.callback, "cls", None)
            for method in ("get", "post", "put", "patch", "delete"):
                if view is not None and hasattr(view, method):
                    found[(method.upper(), route)] = view

    walk(get_resolver().url_patterns)
    return found


def all_at_once(
    count: int,
    send: Callable[[APIClient], Any],
    *,
    token: str | None = None,
    make_client: Callable[[], APIClient] | None = None,
) -> list[Any]:
    """``count`` clients with the token (or made by ``make_client``), each in a thread with its own database
    connection, calling ``send(client)`` at the same moment; their responses in thread order. Fails on a
    thread's error."""
    if (token is None) == (make_client is None):
        raise TypeError("give all_at_once a token or make_client, not both")
    start = threading.Barrier(count)
    responses: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            client = make_client() if make_client is not None else client_for(token=token)
            start.wait(timeout=10)
            responses[index] = send(client)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return responses
