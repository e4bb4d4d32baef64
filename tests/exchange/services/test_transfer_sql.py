"""The one-statement transfer (``greenledger_transfer``) against the ``ledger_post`` path batches take.

Given the same allocations and the same random transfers, both paths leave the same serial blocks, balances,
postings and movements; the audit events the function writes verify; and every invariant reconciles.
"""

from __future__ import annotations

import random

import pytest

from exchange.audit_proof import canonical_json, entry_digest
from exchange.models import AuditEvent, Posting, SerialBlock, SerialMovement, Transaction
from exchange.services.issuance import cea_vintage_create
from exchange.services.sealing import audit_verify
from exchange.services.transfers import TransferOrder, transfer_create, transfers_batch_create
from tests.helpers.ledger import assert_reconciled, balance, make_market

pytestmark = pytest.mark.django_db


def _normalised(asset, accounts):
    index = {a.pk: i for i, a in enumerate(accounts)}
    return sorted(
        (b.first, b.last, index[b.account_id], b.state)
        for b in SerialBlock.objects.filter(asset=asset, account_id__in=index)
    )


def _history(asset, accounts):
    index = {a.pk: i for i, a in enumerate(accounts)}
    postings = [
        (index[p.account_id], p.quantity, p.balance_after)
        for p in Posting.objects.filter(asset=asset, account_id__in=index).order_by("id")
    ]
    movements = [
        (m.first, m.last, index[m.source_id], index[m.destination_id])
        for m in SerialMovement.objects.filter(asset=asset, source_id__in=index).order_by("id")
    ]
    return postings, movements


def test_sql_and_python_paths_leave_the_same_ledger():
    # given two vintages allocated alike to the same five holders (serials start at 1 in each)
    market = make_market()
    cea_2025 = cea_vintage_create(actor=market.registry_actor, vintage=2025)
    holders = [market.holder(f"H{i}") for i in range(5)]
    accounts = [account for _, account, _ in holders]
    for asset in (market.cea, cea_2025):
        for i, account in enumerate(accounts):
            market.give(account, 40 + 7 * i, asset=asset)

    # when the same random transfers run through the function (2024, transfer_create) and through
    # ledger_post (2025, each as a batch of one)
    rng = random.Random(7)
    moves = []
    for _ in range(120):
        a, b = rng.sample(range(5), 2)
        moves.append((a, b, rng.randint(1, 9)))
    for a, b, q in moves:
        source_actor = holders[a][2]
        if balance(accounts[a], market.cea)[0] < q:
            continue
        sql = transfer_create(
            actor=source_actor, source=accounts[a], destination=accounts[b], asset=market.cea, quantity=q
        )
        python = transfers_batch_create(
            actor=source_actor, transfers=[TransferOrder(accounts[a], accounts[b], cea_2025, q)]
        )
        assert [(m.first, m.last) for m in sql._movements] == python.ranges[0]  # the same serials moved

    # then blocks, balances, postings and movements agree, and everything reconciles
    assert _normalised(market.cea, accounts) == _normalised(cea_2025, accounts)
    assert [balance(a, market.cea) for a in accounts] == [balance(a, cea_2025) for a in accounts]
    assert _history(market.cea, accounts) == _history(cea_2025, accounts)
    assert_reconciled()


def test_the_function_writes_the_audit_event_audit_record_would(monkeypatch):
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 100)
    memo = 'spot "deal" \\ 17 — 碳 \x01ranges\x01 \x07'

    txn = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=30, memo=memo)

    event = AuditEvent.objects.get(object_type="transaction", object_id=str(txn.pk))
    assert event.action == "transfer.create"
    assert event.payload == canonical_json(
        {
            "source": a_acc.number,
            "destination": b_acc.number,
            "asset": "CEA-2024",
            "quantity": 30,
            "memo": memo,
            "serials": None,
            "ranges": [[1, 30]],
            # what reconcile recomputes from the journal: the entry's kind, time and postings
            "entry_digest": entry_digest(
                "transfer",
                Transaction.objects.get(pk=txn.pk).created_at,
                [(a_acc.pk, market.cea.pk, -30), (b_acc.pk, market.cea.pk, 30)],
            ),
        }
    )
    assert audit_verify().ok
    assert_reconciled()


def test_a_refused_transfer_leaves_nothing_and_replays_answer_the_first():
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 10)
    first = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="k")

    again = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="k")

    assert again.pk == first.pk
    assert balance(a_acc, market.cea) == (6, 0)
    from exchange.errors import IdempotencyConflict, InsufficientAvailable

    with pytest.raises(IdempotencyConflict):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=5, idempotency_key="k")
    with pytest.raises(InsufficientAvailable) as refused:
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=7)
    assert refused.value.details == {"account": a_acc.number, "asset": "CEA-2024", "available": 6, "requested": 7}
    assert balance(a_acc, market.cea) == (6, 0)
    assert_reconciled()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_statement_is_the_transaction():
    # given no transaction open (as in a web request): the call runs in autocommit, one statement
    from django.db import connection

    from exchange.errors import IdempotencyConflict, InsufficientAvailable
    from exchange.models import Transaction

    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 10)
    assert not connection.in_atomic_block
    transactions = Transaction.objects.count()

    # when a transfer posts, one is replayed, one conflicts and one is refused
    first = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="k")
    again = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=4, idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=5, idempotency_key="k")
    with pytest.raises(InsufficientAvailable):
        transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=7, idempotency_key="k2")

    # then only the first wrote anything, and it is all there
    assert again.pk == first.pk
    assert Transaction.objects.count() == transactions + 1
    assert balance(a_acc, market.cea) == (6, 0)
    assert balance(b_acc, market.cea) == (4, 0)
    assert AuditEvent.objects.filter(action="transfer.create").count() == 1
    assert_reconciled()
    assert audit_verify().ok
