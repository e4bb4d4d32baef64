"""POST /api/v1/transfers/batch: up to 1,000 transfers, all or nothing, one journal transaction, idempotent as a
whole, and every refusal naming the index of the transfer it is about."""

from __future__ import annotations

import pytest

from exchange.models import AuditEvent, Posting, Transaction
from exchange.services.sealing import audit_verify
from exchange.services.transfers import MAX_BATCH, TransferOrder, transfers_batch_create
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import assert_reconciled, balance, blocks, snapshot

URL = "/api/v1/transfers/batch"


@pytest.fixture
def parties(market):
    _, a_acc, a_actor = market.holder("Shougang Steel")
    _, b_acc, _ = market.holder("Huaneng Power")
    _, c_acc, _ = market.holder("Datang")
    market.give(a_acc, 100)
    return a_actor, a_acc, b_acc, c_acc


def _t(source, destination, quantity, **more):
    return {
        "source": source.number,
        "destination": destination.number,
        "asset": "CEA-2024",
        "quantity": quantity,
    } | more


def test_a_batch_posts_every_transfer_in_one_journal_transaction(market, parties):
    a, a_acc, b_acc, c_acc = parties

    response = client_for(a).post(
        URL,
        {"transfers": [_t(a_acc, b_acc, 10), _t(a_acc, c_acc, 5), _t(a_acc, b_acc, 3, serials=[91, 93])], "memo": "m"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    txn = Transaction.objects.get(pk=body["id"])
    assert (txn.kind, txn.memo, body["postings"]) == ("transfer", "m", 6)
    assert Posting.objects.filter(transaction=txn).count() == 6
    assert [t["serial_ranges"] for t in body["transfers"]] == [[[1, 10]], [[11, 15]], [[91, 93]]]
    assert [t["index"] for t in body["transfers"]] == [0, 1, 2]
    assert balance(a_acc, market.cea) == (82, 0)
    assert balance(b_acc, market.cea) == (13, 0)
    assert balance(c_acc, market.cea) == (5, 0)
    assert blocks(market.cea) == [
        (1, 10, b_acc.number, "available"),
        (11, 15, c_acc.number, "available"),
        (16, 90, a_acc.number, "available"),
        (91, 93, b_acc.number, "available"),
        (94, 100, a_acc.number, "available"),
    ]
    event = AuditEvent.objects.get(action="transfer.batch")
    assert event.object_id == str(txn.pk)
    assert audit_verify().ok
    assert_reconciled()


def test_the_same_key_replays_the_whole_batch(market, parties):
    a, a_acc, b_acc, c_acc = parties
    client = client_for(a)
    body = {"transfers": [_t(a_acc, b_acc, 10), _t(a_acc, c_acc, 5)]}

    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    after_first = snapshot()
    again = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    other = client.post(URL, {"transfers": [_t(a_acc, b_acc, 11)]}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert error_of(other) == (409, "idempotency_conflict")
    assert snapshot() == after_first


@pytest.mark.parametrize(
    ("case", "status", "code", "index"),
    [
        ("insufficient_later", 409, "insufficient_available", 2),
        ("serials_taken_twice", 409, "serials_not_available", 1),
        ("same_account", 409, "same_account", 1),
        ("not_your_source", 404, "account_not_found", 2),
        ("unknown_destination", 404, "account_not_found", 1),
        ("unknown_asset", 400, "unknown_asset", 2),
        ("quantity_string", 400, "invalid", 1),
        ("quantity_zero", 400, "invalid", 0),
        ("serials_reversed", 400, "invalid", 1),
        ("serials_wrong_size", 400, "invalid_quantity", 1),
        ("unknown_field", 400, "invalid", 2),
    ],
)
def test_a_refusal_names_the_transfer_and_changes_nothing(market, parties, case, status, code, index):
    a, a_acc, b_acc, c_acc = parties
    market.give(c_acc, 50)
    client = client_for(a)
    items = [_t(a_acc, b_acc, 10), _t(a_acc, c_acc, 20), _t(a_acc, b_acc, 30)]
    if case == "insufficient_later":
        items[2]["quantity"] = 71
    elif case == "serials_taken_twice":
        items[0]["serials"], items[0]["quantity"] = [51, 60], 10
        items[1]["serials"], items[1]["quantity"] = [55, 74], 20
    elif case == "same_account":
        items[1]["destination"] = a_acc.number
    elif case == "not_your_source":
        items[2]["source"] = c_acc.number
    elif case == "unknown_destination":
        items[1]["destination"] = "CN-100-999999"
    elif case == "unknown_asset":
        items[2]["asset"] = "CEA-1999"
    elif case == "quantity_string":
        items[1]["quantity"] = "20"
    elif case == "quantity_zero":
        items[0]["quantity"] = 0
    elif case == "serials_reversed":
        items[1]["serials"] = [40, 21]
    elif case == "serials_wrong_size":
        items[1]["serials"] = [40, 49]
    elif case == "unknown_field":
        items[2]["price"] = 1
    before = snapshot()

    response = client.post(URL, {"transfers": items}, format="json")

    assert error_of(response) == (status, code)
    assert response.json()["error"]["details"]["index"] == index
    assert snapshot() == before


def test_a_batch_holds_one_to_a_thousand_transfers(market, parties):
    a, a_acc, b_acc, _ = parties
    client = client_for(a)

    empty = client.post(URL, {"transfers": []}, format="json")
    too_many = client.post(URL, {"transfers": [_t(a_acc, b_acc, 1)] * (MAX_BATCH + 1)}, format="json")
    not_a_list = client.post(URL, {"transfers": "all of them"}, format="json")

    assert error_of(empty) == (400, "invalid")
    assert error_of(too_many) == (400, "invalid")
    assert error_of(not_a_list) == (400, "invalid")


def test_a_thousand_transfers_post_with_a_constant_number_of_statements(market, parties, django_assert_max_num_queries):
    a, a_acc, b_acc, c_acc = parties
    market.give(a_acc, 2000)
    orders = [TransferOrder(a_acc, b_acc if i % 2 else c_acc, market.cea, 2) for i in range(MAX_BATCH)]

    with django_assert_max_num_queries(20):
        result = transfers_batch_create(actor=a, transfers=orders)

    assert len(result.ranges) == MAX_BATCH
    assert balance(a_acc, market.cea) == (100, 0)
    assert balance(b_acc, market.cea)[0] + balance(c_acc, market.cea)[0] == 2000
    assert_reconciled()


def test_a_suspended_participant_can_not_post_a_batch(market, parties):
    from accounts.services import participant_suspend

    a, a_acc, b_acc, _ = parties
    participant_suspend(actor=market.registry_actor, participant=a_acc.participant, reason="unpaid fees")

    response = client_for(a).post(URL, {"transfers": [_t(a_acc, b_acc, 1)]}, format="json")

    assert error_of(response) == (403, "participant_suspended")
