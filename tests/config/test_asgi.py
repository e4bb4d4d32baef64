"""The ASGI application closes each request's database connection when the request ends: under ASGI a kept
connection is never reused, and persistent ones piled up until PostgreSQL refused every client."""

from __future__ import annotations

import gc
import importlib

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.db import connection, connections


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _get(application, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> int:
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(30)
        while (await communicator.receive_output(30)).get("more_body"):
            pass
        await communicator.wait(5)
        return start["status"]

    return async_to_sync(run)()


@pytest.fixture
def kept_connections():
    """Persistent connections, as the settings give every process, restored afterwards."""
    saved = {alias: settings.DATABASES[alias].get("CONN_MAX_AGE") for alias in connections}
    for alias in connections:
        settings.DATABASES[alias]["CONN_MAX_AGE"] = 60
    yield
    for alias, value in saved.items():
        settings.DATABASES[alias]["CONN_MAX_AGE"] = value


@pytest.mark.django_db(transaction=True)
def test_requests_to_the_asgi_application_leave_no_connection_open(kept_connections):
    import config.asgi

    application = importlib.reload(config.asgi).application  # built now, under the settings every process has

    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    gc.disable()  # the leak was only ever undone by garbage collection
    try:
        before = _backends()
        statuses = [_get(application, "/registry/serials") for _ in range(5)]
        after = _backends()
    finally:
        gc.enable()

    assert statuses == [200] * 5
    assert after == before
