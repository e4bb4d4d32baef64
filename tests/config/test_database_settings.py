"""The database settings: prepared statements only with server-side binding, and off when asked (PgBouncer)."""

from __future__ import annotations

from config import settings


def test_server_side_binding_brings_prepared_statements_from_the_fifth_run(monkeypatch):
    monkeypatch.setenv("DB_SERVER_SIDE_BINDING", "1")
    monkeypatch.delenv("DB_PREPARE_THRESHOLD", raising=False)

    options = settings.database_config()["OPTIONS"]

    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5


def test_a_threshold_of_zero_keeps_statements_unprepared(monkeypatch):
    monkeypatch.setenv("DB_SERVER_SIDE_BINDING", "1")
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "0")

    options = settings.database_config()["OPTIONS"]

    assert options["server_side_binding"] is True
    assert "prepare_threshold" not in options  # Django's default: psycopg prepares nothing


def test_by_default_queries_are_bound_client_side_and_never_prepared(monkeypatch):
    monkeypatch.delenv("DB_SERVER_SIDE_BINDING", raising=False)
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "3")

    options = settings.database_config().get("OPTIONS", {})

    assert "server_side_binding" not in options
    assert "prepare_threshold" not in options
