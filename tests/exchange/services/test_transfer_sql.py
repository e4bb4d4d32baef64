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


def _blocks(account, asset) -> list[tuple[int, int]]:
    return list(
        SerialBlock.objects.filter(account=account, asset=asset, state="available")
        .order_by("first")
        .values_list("first", "last")
    )


def test_greenledger_blocks_take_takes_whole_blocks_from_the_lowest_and_shrinks_the_last():
    # given a source holding 1-4, 7-10 and 13-20 (named serials moved out between them)
    from django.db import connection, transaction

    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    market.give(a_acc, 20)
    for serials in ((5, 6), (11, 12)):
        transfers_batch_create(actor=a, transfers=[TransferOrder(a_acc, b_acc, market.cea, 2, serials=serials)])
    assert _blocks(a_acc, market.cea) == [(1, 4), (7, 10), (13, 20)]

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT first, last FROM greenledger_blocks_take(%s::bigint[], %s::bigint[], %s::bigint[])",
            [[a_acc.pk], [market.cea.pk], [10]],
        )
        taken = cursor.fetchall()
        after = _blocks(a_acc, market.cea)
        # with fewer units in blocks than asked it takes them all and returns less: the caller refuses
        cursor.execute(
            "SELECT first, last FROM greenledger_blocks_take(%s::bigint[], %s::bigint[], %s::bigint[])",
            [[a_acc.pk], [market.cea.pk], [100]],
        )
        rest = cursor.fetchall()
        transaction.set_rollback(True)

    assert taken == [(1, 4), (7, 10), (13, 14)]
    assert after == [(15, 20)]
    assert rest == [(15, 20)]
    assert _blocks(a_acc, market.cea) == [(1, 4), (7, 10), (13, 20)]


def test_both_paths_take_the_same_serials_and_refuse_more_than_available_alike():
    # given two holders alike, one moving through the function, the other through ledger_post
    from exchange.errors import InsufficientAvailable

    market = make_market()
    pairs = []
    for name in ("A", "B"):
        _, source, actor = market.holder(f"{name} source")
        _, dest, _ = market.holder(f"{name} destination")
        market.give(source, 20)
        transfers_batch_create(actor=actor, transfers=[TransferOrder(source, dest, market.cea, 2, serials=None)])
        pairs.append((source, dest, actor))
    (sql_src, sql_dst, sql_actor), (py_src, py_dst, py_actor) = pairs
    offset = _blocks(py_src, market.cea)[0][0] - _blocks(sql_src, market.cea)[0][0]

    transfer_create(actor=sql_actor, source=sql_src, destination=sql_dst, asset=market.cea, quantity=7)
    transfers_batch_create(actor=py_actor, transfers=[TransferOrder(py_src, py_dst, market.cea, 7)])

    shifted = [(f + offset, last + offset) for f, last in _blocks(sql_src, market.cea)]
    assert shifted == _blocks(py_src, market.cea)
    with pytest.raises(InsufficientAvailable) as by_sql:
        transfer_create(actor=sql_actor, source=sql_src, destination=sql_dst, asset=market.cea, quantity=12)
    with pytest.raises(InsufficientAvailable) as by_python:
        transfers_batch_create(actor=py_actor, transfers=[TransferOrder(py_src, py_dst, market.cea, 12)])
    assert by_sql.value.code == by_python.value.code == "insufficient_available"
    assert by_sql.value.details == {"account": sql_src.number, "asset": "CEA-2024", "available": 11, "requested": 12}
    assert by_python.value.details == {
        "index": 0,
        "account": py_src.number,
        "asset": "CEA-2024",
        "available": 11,
        "requested": 12,
    }
    assert balance(sql_src, market.cea) == balance(py_src, market.cea) == (11, 0)
    assert len(_blocks(sql_src, market.cea)) == len(_blocks(py_src, market.cea))
    assert_reconciled()
