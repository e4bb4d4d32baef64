"""POST /api/v1/retirements and /api/v1/cancellations, and reading retirements back."""

from __future__ import annotations

import pytest

from exchange.models import AccountKind, Retirement
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import balance, blocks, snapshot, system

pytestmark = pytest.mark.django_db


def _retire(a_acc, **changes):
    return {
        "account": a_acc.number,
        "asset": "CEA-2024",
        "quantity": 25,
        "beneficiary": "Beijing Marathon 2025",
        "reason": "Offsetting the event's emissions",
    } | changes


def test_retire_and_read_it_back(market):
    _, a_acc, a = market.holder("A")
    market.give(a_acc, 100)
    client = client_for(a)

    response = client.post("/api/v1/retirements", _retire(a_acc), format="json", HTTP_IDEMPOTENCY_KEY="ret-1")
    again = client.post("/api/v1/retirements", _retire(a_acc), format="json", HTTP_IDEMPOTENCY_KEY="ret-1")

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("account", "asset", "quantity", "beneficiary", "reason")} == {
        "account": a_acc.number,
        "asset": "CEA-2024",
        "quantity": 25,
        "beneficiary": "Beijing Marathon 2025",
        "reason": "Offsetting the event's emissions",
    }
    sink = system(AccountKind.RETIREMENT)
    assert [
        (r["first"], r["last"], r["destination"], r["state"]) for r in body["transaction"]["serial_ranges"]
    ] == [(1, 25, sink.number, "retired")]
    assert again.json() == body
    assert Retirement.objects.count() == 1
    assert balance(a_acc, market.cea) == (75, 0)
    assert blocks(market.cea) == [(1, 25, sink.number, "retired"), (26, 100, a_acc.number, "available")]
    assert client.get(f"/api/v1/retirements/{body['id']}").json() == body
    assert [r["id"] for r in client.get("/api/v1/retirements").json()["results"]] == [body["id"]]


def test_others_retirements_are_not_found(market):
    _, a_acc, a = market.holder("A")
    _, _, b = market.holder("B")
    market.give(a_acc, 100)
    retirement = client_for(a).post("/api/v1/retirements", _retire(a_acc), format="json").json()
    client = client_for(b)

    assert error_of(client.get(f"/api/v1/retirements/{retirement['id']}")) == (404, "transaction_not_found")
    assert client.get("/api/v1/retirements").json()["results"] == []
    assert client_for(market.registry_actor).get(f"/api/v1/retirements/{retirement['id']}").status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"quantity": 101}, 409, "insufficient_available"),
        ({"beneficiary": ""}, 400, "invalid"),
        ({"asset": "CCER-NOPE-2023"}, 400, "unknown_asset"),
        ({"account": "CN-100-999999"}, 404, "account_not_found"),
    ],
)
def test_retirement_refusals(market, change, status, code):
    _, a_acc, a = market.holder("A")
    market.give(a_acc, 100)
    client = client_for(a)
    before = snapshot()

    response = client.post("/api/v1/retirements", _retire(a_acc, **change), format="json")

    assert error_of(response) == (status, code)
    assert snapshot() == before


def test_registry_cancels_and_others_may_not(market):
    _, a_acc, a = market.holder("A")
    market.give(a_acc, 100)
    body = {
        "account": a_acc.number,
        "asset": "CEA-2024",
        "quantity": 10,
        "reason": "Over-allocation",
        "serials": [91, 100],
    }
    holder = client_for(a)
    before = snapshot()

    refused = holder.post("/api/v1/cancellations", body, format="json")
    assert error_of(refused) == (403, "wrong_participant_kind")
    assert snapshot() == before

    response = client_for(market.registry_actor).post("/api/v1/cancellations", body, format="json")

    assert response.status_code == 201
    assert response.json()["kind"] == "cancellation"
    sink = system(AccountKind.CANCELLATION)
    assert blocks(market.cea) == [(1, 90, a_acc.number, "available"), (91, 100, sink.number, "cancelled")]
    assert balance(a_acc, market.cea) == (90, 0)
