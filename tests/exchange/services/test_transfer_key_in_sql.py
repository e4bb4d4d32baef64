"""A keyed transfer of the lowest serials claims its Idempotency-Key in its one statement (``greenledger_transfer``).

The claim is the one mechanism's (``exchange.services.idempotency``): the same store, the same row and kept
answer as ``KeyedRequest.run`` writes, the same refusals (409 ``idempotency_conflict``, ``request_in_progress``)
and the same replays, whichever route (the function, or a service call through ``keyed_call``) claimed it.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction

from exchange.errors import IdempotencyConflict, InsufficientAvailable, RequestInProgress
from exchange.models import AuditEvent, IdempotentRequest, PendingTransfer, Transaction
from exchange.services import idempotency
from exchange.services.idempotency import idempotency_claim, idempotency_digest
from exchange.services.transfers import transfer_create
from tests.helpers.concurrency import attempt, run_workers
from tests.helpers.ledger import assert_reconciled, balance, make_market


@pytest.mark.django_db(transaction=True)
def test_a_keyed_transfer_is_one_statement_and_keeps_the_answer_keyed_call_keeps():
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 10)
    statements: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        txn = transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="one-rt"
        )

    # one statement, in autocommit: no BEGIN, claim, answer or COMMIT of its own
    assert len(statements) == 1
    assert "greenledger_transfer" in statements[0]
    assert not connection.in_atomic_block
    row = IdempotentRequest.objects.get(key="one-rt")
    assert (row.scope, row.method, row.path, row.status) == (
        f"participant:{a.participant_id}",
        "CALL",
        "service:transfer_create",
        200,
    )
    assert row.body == json.dumps({"model": "exchange.transaction", "id": txn.pk})
    request = {
        "source": ["exchange.account", a_acc.pk],
        "destination": ["exchange.account", b_acc.pk],
        "asset": ["exchange.asset", market.cea.pk],
        "quantity": 4,
        "memo": "",
        "serials": None,
    }
    assert row.request_hash == idempotency_digest(request)
    assert balance(a_acc, market.cea) == (6, 0)
    assert_reconciled()


@pytest.mark.django_db
def test_replays_and_conflicts_across_the_two_ways_of_claiming():
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 20)
    first = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=3, idempotency_key="k")

    # the same request replays the entry; another body or another service with the key is a conflict
    again = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=3, idempotency_key="k")
    assert isinstance(again, Transaction)
    assert again.pk == first.pk
    with pytest.raises(IdempotencyConflict) as other_body:
        transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=3, memo="x", idempotency_key="k"
        )
    assert other_body.value.details == {"idempotency_key": "k", "first_request": "CALL service:transfer_create"}
    with pytest.raises(IdempotencyConflict):  # named serials take the keyed_call route: the same store
        transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=3, serials=(4, 6), idempotency_key="k"
        )

    # a key claimed by the keyed_call route (named serials) is replayed by it and refused by the function
    named = transfer_create(
        actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=2, serials=(4, 5), idempotency_key="n"
    )
    assert (
        transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=2, serials=(4, 5), idempotency_key="n"
        ).pk
        == named.pk
    )
    with pytest.raises(IdempotencyConflict):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=2, idempotency_key="n")

    assert balance(a_acc, market.cea) == (15, 0)
    assert IdempotentRequest.objects.filter(key__in=["k", "n"]).count() == 2
    assert AuditEvent.objects.filter(action="transfer.create").count() == 2
    assert_reconciled()


@pytest.mark.django_db(transaction=True)
def test_a_refused_keyed_transfer_leaves_its_key_free():
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 5)

    with pytest.raises(InsufficientAvailable):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=6, idempotency_key="r")

    assert not IdempotentRequest.objects.filter(key="r").exists()
    # the key is free: a request that can move does move under it
    market.give(a_acc, 1)
    txn = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=6, idempotency_key="r")
    assert IdempotentRequest.objects.get(key="r").body == json.dumps({"model": "exchange.transaction", "id": txn.pk})
    assert balance(b_acc, market.cea) == (6, 0)


@pytest.mark.django_db(transaction=True)
def test_a_twin_of_a_transfer_still_running_is_request_in_progress(monkeypatch):
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 5)
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.2)
    monkeypatch.setattr("exchange.services.transfers.WAIT_SECONDS", 0.2)
    request = {
        "source": ["exchange.account", a_acc.pk],
        "destination": ["exchange.account", b_acc.pk],
        "asset": ["exchange.asset", market.cea.pk],
        "quantity": 1,
        "memo": "",
        "serials": None,
    }
    with transaction.atomic():
        # the first request holds the key, uncommitted
        idempotency_claim(
            scope=f"participant:{a.participant_id}",
            key="slow",
            method="CALL",
            operation="service:transfer_create",
            digest=idempotency_digest(request),
        )
        [outcome] = run_workers(
            1,
            lambda _: [
                attempt(
                    lambda: transfer_create(
                        actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=1, idempotency_key="slow"
                    )
                )
            ],
        )
        connection.set_rollback(True)

    assert outcome == RequestInProgress.code
    assert balance(a_acc, market.cea) == (5, 0)


@pytest.mark.django_db(transaction=True)
def test_eight_twins_with_one_key_move_once_and_answer_alike():
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 50)

    def work(_: int) -> list[str]:
        result: list[str] = []

        def call() -> None:
            txn = transfer_create(
                actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=7, idempotency_key="burst"
            )
            result.append(str(txn.pk))

        outcome = attempt(call)
        return result if outcome == "ok" else [outcome]

    outcomes = run_workers(8, work)

    assert len(outcomes) == 8, outcomes
    assert len(set(outcomes)) == 1, outcomes  # every one answers the one entry
    assert balance(a_acc, market.cea) == (43, 0)
    assert balance(b_acc, market.cea) == (7, 0)
    assert IdempotentRequest.objects.filter(key="burst").count() == 1
    assert_reconciled()


@pytest.mark.django_db(transaction=True)
def test_an_untrusted_destination_waits_and_replays_as_a_pending_transfer(settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True}
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 10)
    transactions = Transaction.objects.count()

    first = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="p")
    again = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="p")

    assert isinstance(first, PendingTransfer)
    assert isinstance(again, PendingTransfer)
    assert again.pk == first.pk
    assert Transaction.objects.count() == transactions
    assert balance(a_acc, market.cea) == (10, 4)
    assert IdempotentRequest.objects.get(key="p").body == json.dumps(
        {"model": "exchange.pendingtransfer", "id": first.pk}
    )
