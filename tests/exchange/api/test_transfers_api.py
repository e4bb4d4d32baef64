"""POST /api/v1/transfers: the body, every refusal as the error body (docs/architecture.md, Errors),
and the Idempotency-Key (replayed, conflicting, and sent by 8 clients at once on PostgreSQL)."""

from __future__ import annotations

import pytest

from accounts.models import Role
from accounts.services import participant_suspend
from exchange.models import Transaction
from tests.helpers.api import all_at_once, client_for, error_of, token_for
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, make_market, snapshot

URL = "/api/v1/transfers"


@pytest.fixture
def parties(market):
    a, a_acc, a_actor = market.holder("Shougang Steel")
    _, b_acc, _ = market.holder("Huaneng Power")
    market.give(a_acc, 100)
    return a, a_acc, a_actor, b_acc


def _body(a_acc, b_acc, **changes):
    return {
        "source": a_acc.number,
        "destination": b_acc.number,
        "asset": "CEA-2024",
        "quantity": 30,
    } | changes


def test_transfer_answers_201_with_the_transaction(market, parties):
    _, a_acc, a, b_acc = parties
    client = client_for(a)

    response = client.post(URL, _body(a_acc, b_acc, memo="spot deal 17"), format="json")

    assert response.status_code == 201
    body = response.json()
    txn = Transaction.objects.get(kind="transfer")
    assert body["id"] == txn.pk
    assert body["kind"] == "transfer"
    assert body["memo"] == "spot deal 17"
    assert body["url"] == f"/api/v1/transactions/{txn.pk}"
    assert body["created_at"].endswith("+08:00")
    assert sorted((p["account"], p["asset"], p["quantity"], p["balance_after"]) for p in body["postings"]) == [
        (a_acc.number, "CEA-2024", -30, 70),
        (b_acc.number, "CEA-2024", 30, None),  # not the sender's account: its balance is not shown
    ]
    assert body["serial_ranges"] == [
        {
            "asset": "CEA-2024",
            "first": 1,
            "last": 30,
            "source": a_acc.number,
            "destination": b_acc.number,
            "state": "available",
        }
    ]
    assert balance(a_acc, market.cea) == (70, 0)
    assert blocks(market.cea) == [(1, 30, b_acc.number, "available"), (31, 100, a_acc.number, "available")]


def test_transfer_of_an_explicit_range(market, parties):
    _, a_acc, a, b_acc = parties

    response = client_for(a).post(URL, _body(a_acc, b_acc, quantity=10, serials=[45, 54]), format="json")

    assert response.status_code == 201
    assert [(r["first"], r["last"]) for r in response.json()["serial_ranges"]] == [(45, 54)]
    assert blocks(market.cea) == [
        (1, 44, a_acc.number, "available"),
        (45, 54, b_acc.number, "available"),
        (55, 100, a_acc.number, "available"),
    ]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unknown_asset", 400, "unknown_asset"),
        ("quantity_string", 400, "invalid"),
        ("quantity_fraction", 400, "invalid"),
        ("quantity_zero", 400, "min_value"),
        ("missing_destination", 400, "invalid"),
        ("serials_reversed", 400, "invalid"),
        ("serials_not_the_quantity", 400, "invalid_quantity"),
        ("serials_not_held", 409, "serials_not_available"),
        ("bad_idempotency_key", 400, "invalid"),
        ("malformed_json", 400, "malformed_request"),
        ("insufficient", 409, "insufficient_available"),
        ("same_account", 409, "same_account"),
        ("not_your_source", 404, "account_not_found"),
        ("unknown_destination", 404, "account_not_found"),
        ("unauthenticated", 401, "not_authenticated"),
        ("bad_token", 401, "authentication_failed"),
        ("suspended", 403, "participant_suspended"),
        ("viewer", 403, "role_forbidden"),
    ],
)
def test_transfer_refusals(market, parties, case, status, code):
    a, a_acc, a_actor, b_acc = parties
    _, c_acc, _ = market.holder("C")
    market.give(c_acc, 100)
    body = _body(a_acc, b_acc)
    client = client_for(a_actor)
    headers = {}
    if case == "unknown_asset":
        body["asset"] = "CEA-1999"
    elif case == "quantity_string":
        body["quantity"] = "30"
    elif case == "quantity_fraction":
        body["quantity"] = 2.5
    elif case == "quantity_zero":
        body["quantity"] = 0
    elif case == "missing_destination":
        del body["destination"]
    elif case == "serials_reversed":
        body["serials"] = [40, 11]
    elif case == "serials_not_the_quantity":
        body["serials"] = [1, 29]
    elif case == "serials_not_held":
        body["serials"] = [81, 110]
    elif case == "bad_idempotency_key":
        headers["HTTP_IDEMPOTENCY_KEY"] = "x" * 129
    elif case == "insufficient":
        body["quantity"] = 101
    elif case == "same_account":
        body["destination"] = a_acc.number
    elif case == "not_your_source":
        body["source"] = c_acc.number
    elif case == "unknown_destination":
        body["destination"] = "CN-100-999999"
    elif case == "unauthenticated":
        client = client_for()
    elif case == "bad_token":
        client = client_for(token="gl_nope_wrong-secret")
    elif case == "suspended":
        participant_suspend(actor=market.registry_actor, participant=a, reason="unpaid fees")
    elif case == "viewer":
        client = client_for(actor_for(a, role=Role.VIEWER))
    before = snapshot()

    if case == "malformed_json":
        response = client.post(URL, data="{not json", content_type="application/json")
    else:
        response = client.post(URL, body, format="json", **headers)

    assert error_of(response) == (status, code)
    assert snapshot() == before


def test_insufficient_available_names_the_figures(market, parties):
    _, a_acc, a, b_acc = parties

    response = client_for(a).post(URL, _body(a_acc, b_acc, quantity=101), format="json")

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {
        "account": a_acc.number,
        "asset": "CEA-2024",
        "available": 100,
        "requested": 101,
    }


def test_unauthenticated_answer_names_the_scheme(market, parties):
    _, a_acc, _, b_acc = parties

    response = client_for().post(URL, _body(a_acc, b_acc), format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- idempotency ---------------------------------------------------------------------------------------
def test_same_key_twice_makes_one_transaction_and_the_same_body(market, parties):
    _, a_acc, a, b_acc = parties
    client = client_for(a)

    first = client.post(URL, _body(a_acc, b_acc), format="json", HTTP_IDEMPOTENCY_KEY="order-7781")
    client.post(URL, _body(a_acc, b_acc, quantity=5), format="json")  # the account moves on meanwhile
    after_both = snapshot()
    again = client.post(URL, _body(a_acc, b_acc), format="json", HTTP_IDEMPOTENCY_KEY="order-7781")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert snapshot() == after_both
    assert Transaction.objects.filter(kind="transfer").count() == 2
    assert balance(a_acc, market.cea) == (65, 0)


def test_a_refused_request_does_not_use_up_its_key(market, parties):
    _, a_acc, a, b_acc = parties
    client = client_for(a)

    refused = client.post(URL, _body(a_acc, b_acc, quantity=150), format="json", HTTP_IDEMPOTENCY_KEY="k-9")
    market.give(a_acc, 100)
    retried = client.post(URL, _body(a_acc, b_acc, quantity=150), format="json", HTTP_IDEMPOTENCY_KEY="k-9")

    assert error_of(refused) == (409, "insufficient_available")
    assert retried.status_code == 201
    assert balance(b_acc, market.cea) == (150, 0)


def test_same_key_with_another_body_is_409(market, parties):
    _, a_acc, a, b_acc = parties
    client = client_for(a)
    client.post(URL, _body(a_acc, b_acc), format="json", HTTP_IDEMPOTENCY_KEY="order-7781")
    before = snapshot()

    response = client.post(URL, _body(a_acc, b_acc, quantity=31), format="json", HTTP_IDEMPOTENCY_KEY="order-7781")

    assert error_of(response) == (409, "idempotency_conflict")
    assert snapshot() == before


def test_keys_belong_to_the_participant(market, parties):
    _, a_acc, a, b_acc = parties
    _, c_acc, c = market.holder("C")
    market.give(c_acc, 100)
    client_for(a).post(URL, _body(a_acc, b_acc), format="json", HTTP_IDEMPOTENCY_KEY="k")

    response = client_for(c).post(URL, _body(c_acc, b_acc), format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 201
    assert Transaction.objects.filter(kind="transfer").count() == 2
    assert balance(b_acc, market.cea) == (60, 0)


@pytest.mark.django_db(transaction=True)
def test_same_key_sent_by_8_clients_at_once_makes_one_transaction():
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    token = token_for(a)
    responses = all_at_once(
        8,
        lambda client: client.post(URL, _body(a_acc, b_acc), format="json", HTTP_IDEMPOTENCY_KEY="burst-1"),
        token=token,
    )

    assert [r.status_code for r in responses] == [201] * 8
    assert len({r.content for r in responses}) == 1
    assert Transaction.objects.filter(kind="transfer").count() == 1
    assert balance(a_acc, market.cea) == (70, 0)
    assert balance(b_acc, market.cea) == (30, 0)
    assert_reconciled()
