"""Request bodies: a key given twice, a non-standard constant, or a body over the size limit is refused
with the JSON error body and a stable code, and changes nothing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from exchange.models import AuditEvent, Posting
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    market = make_market()
    _, source, actor = market.holder("A")
    _, destination, _ = market.holder("B")
    market.give(source, 100)
    return source, destination, client_for(actor)


def state():
    return Posting.objects.count(), AuditEvent.objects.count()


@pytest.mark.parametrize(
    "template",
    [
        '{{"source": "{s}", "destination": "{d}", "asset": "CEA-2024", "quantity": -5, "quantity": 1}}',
        '{{"source": "{s}", "source": "{s}", "destination": "{d}", "asset": "CEA-2024", "quantity": 1}}',
        '{{"source": "{s}", "destination": "{d}", "asset": "CEA-2024", "quantity": 1, "serials": null,'
        ' "memo": "a", "memo": "b"}}',
    ],
    ids=["quantity-twice", "same-value-twice", "memo-twice"],
)
def test_a_key_given_twice_is_a_malformed_request(world, template):
    source, destination, client = world
    before = state()
    body = template.format(s=source.number, d=destination.number)
    response = client.post("/api/v1/transfers", body, content_type="application/json")
    assert error_of(response) == (400, "malformed_request")
    assert "more than once" in response.json()["error"]["message"]
    assert state() == before


def test_a_key_given_twice_in_a_nested_object_is_refused(world):
    source, destination, client = world
    body = (
        f'{{"transfers": [{{"source": "{source.number}", "destination": "{destination.number}",'
        f' "asset": "CEA-2024", "quantity": 1, "quantity": 2}}]}}'
    )
    response = client.post("/api/v1/transfers/batch", body, content_type="application/json")
    assert error_of(response) == (400, "malformed_request")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_malformed(world, constant):
    _, _, client = world
    response = client.post("/api/v1/transfers", f'{{"quantity": {constant}}}', content_type="application/json")
    assert error_of(response) == (400, "malformed_request")


def test_the_same_keys_once_each_still_transfer(world):
    source, destination, client = world
    body = f'{{"source": "{source.number}", "destination": "{destination.number}", "asset": "CEA-2024", "quantity": 1}}'
    assert client.post("/api/v1/transfers", body, content_type="application/json").status_code == 201


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": "big-1"}], ids=["plain", "keyed"])
def test_an_oversize_body_is_a_json_413(world, headers, debug, settings):
    """Also with DEBUG on (make run), where Django answered a view's RequestDataTooBig with its HTML page."""
    settings.DEBUG = debug
    _, _, client = world
    before = state()
    body = '{"memo": "' + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + '"}'
    response = client.post("/api/v1/transfers", body, content_type="application/json", **headers)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert error_of(response) == (413, "request_too_large")
    assert response.json()["error"]["details"] == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    assert state() == before


def test_an_oversize_form_outside_the_api_keeps_djangos_page():
    body = "a=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    response = Client().post("/admin/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
