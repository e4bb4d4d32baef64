"""The ASGI application (``make run``, ``config.asgi``) leaves no database connection open after a request."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from django.db import connection, connections

from tests.helpers.api import token_for
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db(transaction=True)

PORT = 17623


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.fixture
def served():
    kept = {alias: connections.settings[alias]["CONN_MAX_AGE"] for alias in connections}
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 60  # as DB_CONN_MAX_AGE has it by default
    from config.asgi import django_asgi_application  # here: importing it builds the application

    config = uvicorn.Config(django_asgi_application(), host="127.0.0.1", port=PORT, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{PORT}"
    server.should_exit = True
    thread.join(timeout=15)
    for alias, max_age in kept.items():
        connections.settings[alias]["CONN_MAX_AGE"] = max_age


def test_requests_served_over_asgi_keep_no_connection_open(served):
    """Each ASGI request runs in a thread of its own; a connection it kept for reuse (CONN_MAX_AGE) would
    stay open until that thread was collected, one a request, until PostgreSQL refused new clients."""
    _, _, actor = make_market().holder("Connections")
    token = token_for(actor)
    before = _backends()
    with httpx.Client(base_url=served, headers={"Authorization": f"Token {token}"}, timeout=20) as client:
        for _ in range(15):
            response = client.get("/api/v1/accounts")
            assert response.status_code == 200, response.text[:300]
    time.sleep(0.2)  # the last request's close is sent after its answer
    assert _backends() <= before
