"""Fuzzing the API from its own OpenAPI schema (schemathesis): the schema and the API agree.

Every operation is exercised with generated input, valid (positive) and invalid (negative) by the schema,
by three kinds of caller (a registry officer, the exchange operator and a trading compliance entity) on a
small market. Each answer must be:

- never a 5xx;
- a response the schema describes (status, content type, body);
- for a request the schema calls invalid: refused (4xx);
- for a request the schema calls valid: not refused for its shape. A 400 whose error code says the shape
  was wrong (``malformed_request``, a field ``invalid``/``required``/``null``/``blank``, ``min_value`` ...)
  or a 415 means the schema promised more than the API takes. Refusals for what the values mean (an
  unknown asset, a closed session, not enough units) are business answers and fine.

The number of examples per operation is bounded for CI (FUZZ_EXAMPLES, default 5, each drawn valid and
invalid); raise it locally to search harder.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from accounts.actors import Actor
from accounts.services import api_token_create
from core import clock
from tests.helpers.market import IN_SESSION, make_exchange

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
NEGATIVE_EXPECTED = ["400", "401", "403", "404", "405", "409", "413", "415", "429"]


@pytest.fixture
def world(db):
    """A registry, an exchange and a trader with units and cash, and a token for each."""
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, account, trader = ex.trader("Fuzz trader", units=1000, cash_fen=10_000_000)
        ex.order(trader, account, "sell", 8100, 10)
    tokens = {}
    for name, actor in (
        ("registry", ex.market.registry_actor),
        ("exchange", ex.operator),
        ("trader", trader),
    ):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(pk=actor.user_id)
        tokens[name] = api_token_create(actor=Actor.system("fuzz"), user=user, name="fuzz")[1]
    return tokens


# Loaded when the module is collected (the schema view needs no database). schemathesis's lazy
# fixture loader would be the alternative, but it relies on pytest internals that pytest 9 removed.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
# Valid and invalid input alike; an invalid request may be refused with any of these.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
schema.config.checks.negative_data_rejection.expected_statuses = NEGATIVE_EXPECTED


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: keep the test's connection (and its transaction) across requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)


# Error codes that say a request's shape was wrong (what a schema can state), as opposed to what its values
# mean to the ledger.
SHAPE_CODES = frozenset(
    {
        "malformed_request",
        "unsupported_media_type",
        "invalid",
        "required",
        "null",
        "blank",
        "min_value",
        "max_value",
        "max_length",
        "min_length",
        "invalid_choice",
        "not_a_list",
        "empty",
        "max_digits",
        "max_decimal_places",
        "date",
        "datetime",
        "parse_error",
    }
)


def shape_accepted(ctx, response, case) -> None:
    """A request valid by the schema is not refused for its shape (see the module docstring)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if response.status_code == 415:
        raise AssertionError(f"A schema-valid body was refused as an unsupported media type: {response.text[:300]}")
    if response.status_code not in (400, 413):
        return
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"A 400 without the JSON error body: {response.text[:300]}") from None
    details = response.json()["error"]["details"]
    if isinstance(details, dict) and set(details) == {"Idempotency-Key"}:
        return  # the header's rules are stated in the schema by the idempotency work, not here
    # Rules on values that JSON Schema can't state: a serial range's order ([first, last] with last >= first)
    # and an uploaded file's encoding (UTF-8). Refused with their messages below; they are not shape.
    value_rules = ("a range [first, last] of serial numbers", "The range ends before it starts.", "not UTF-8 text.")
    if any(rule in response.text for rule in value_rules):
        return
    if "Null characters are not allowed." in response.text:
        return  # text fields refuse NUL (PostgreSQL can't store it); the schema doesn't yet say so per field
    if code in SHAPE_CODES:
        raise AssertionError(f"A schema-valid request was refused for its shape ({code}): {response.text[:500]}")


def check(case, token: str) -> None:
    with clock.pinned(IN_SESSION):
        case.call_and_validate(
            headers={"Authorization": f"Token {token}"},
            checks=[not_a_server_error, response_schema_conformance, negative_data_rejection, shape_accepted],
        )


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_as_the_registry(case, world):
    check(case, world["registry"])


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_as_the_exchange_operator(case, world):
    check(case, world["exchange"])


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_as_a_trading_entity(case, world):
    check(case, world["trader"])


# --- what fuzzing found, pinned as plain tests ---------------------------------------------------------
@pytest.fixture
def trader_client(world):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world['trader']}")
    return client


def test_a_one_element_serial_range_is_a_400(trader_client):
    response = trader_client.post(
        "/api/v1/transfers",
        {"source": "x", "destination": "y", "asset": "CEA-2024", "quantity": 1, "serials": [5]},
        format="json",
    )
    assert response.status_code == 400
    assert "serials" in response.json()["error"]["details"]


def test_a_nul_character_in_an_asset_code_is_a_400(trader_client):
    response = trader_client.post(
        "/api/v1/orders",
        {"account": "x", "asset": "CEA\x00", "side": "buy", "price": "80.00", "quantity": 1, "client_order_id": "n"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("path", ["/api/v1/orders/99999999999999999999", "/api/v1/projects/A%00B"])
def test_ids_and_codes_the_database_cant_hold_are_404(trader_client, path):
    response = trader_client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/transfers/pending?status=",
        "/api/v1/trades?settled=null",
        "/api/v1/orders?trading_day=",
        "/api/v1/accounts?page_size=0",
        "/api/v1/accounts?page_size=501",
        "/api/v1/accounts?page_size=null",
        "/api/v1/assets?vintage=0.5",
    ],
)
def test_query_values_the_schema_refuses_are_400(trader_client, path):
    response = trader_client.get(path)
    assert response.status_code == 400, (path, response.content)
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/x-www-form-urlencoded", "quantity=1"), ("multipart/form-data; boundary=x", "--x--")],
)
def test_only_json_bodies_are_taken(trader_client, content_type, body):
    response = trader_client.post("/api/v1/transfers", body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_the_schema_advertises_json_bodies_only():
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "requestBody" in operation and path != "/api/v1/allocations/csv":
                assert list(operation["requestBody"]["content"]) == ["application/json"], (method, path)
