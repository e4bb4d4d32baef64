"""What PostgreSQL itself refuses (migration 0002): changing posted rows, an unbalanced journal entry
at commit, postings added to a committed entry, and overlapping serial blocks."""

from __future__ import annotations

import sys

import pytest
from django.db import IntegrityError, connection, transaction

from exchange.models import Posting, SerialBlock, Transaction
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import assert_reconciled, make_market, snapshot


@pytest.fixture
def moved(db):
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    txn = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=30)
    return market, a_acc, b_acc, txn


INSERT_BLOCK = (
    "INSERT INTO exchange_serialblock (asset_id, first, last, account_id, state) "
    "VALUES (%s, %s, %s, %s, 'available')"
)


def _execute(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE exchange_posting SET quantity = quantity * 2 WHERE transaction_id = %s", "exchange_posting"),
        ("UPDATE exchange_posting SET balance_after = 0 WHERE transaction_id = %s", "exchange_posting"),
        ("DELETE FROM exchange_posting WHERE transaction_id = %s", "exchange_posting"),
        ("UPDATE exchange_transaction SET memo = 'rewritten' WHERE id = %s", "exchange_transaction"),
        ("DELETE FROM exchange_transaction WHERE id = %s", "exchange_transaction"),
        (
            "UPDATE exchange_serialmovement SET last = last + 1 WHERE transaction_id = %s",
            "exchange_serialmovement",
        ),
        ("DELETE FROM exchange_serialmovement WHERE transaction_id = %s", "exchange_serialmovement"),
    ],
)
def test_posted_rows_are_never_changed_or_deleted(moved, sql, table):
    *_, txn = moved
    before = snapshot()

    with pytest.raises(IntegrityError, match=f"of {table} rows is refused"), transaction.atomic():
        _execute(sql, [txn.pk])

    assert snapshot() == before
    assert sorted(Posting.objects.filter(transaction=txn).values_list("quantity", flat=True)) == [-30, 30]


def test_orm_update_of_a_posting_is_refused_too(moved):
    *_, txn = moved

    with pytest.raises(IntegrityError, match="posted rows are never changed"), transaction.atomic():
        Posting.objects.filter(transaction=txn).update(quantity=1)


def test_overlapping_serial_block_is_refused(moved):
    market, a_acc, _, _ = moved
    before = snapshot()

    # Starts inside A's block 31-100, not at its first serial: only the exclusion constraint can catch it.
    with pytest.raises(IntegrityError, match="block_no_overlap"), transaction.atomic():
        _execute(
            INSERT_BLOCK,
            [market.cea.pk, 95, 120, a_acc.pk],
        )

    assert snapshot() == before


def test_a_block_beside_the_others_is_accepted_by_the_constraint(moved):
    market, a_acc, _, _ = moved

    with transaction.atomic():
        _execute(
            INSERT_BLOCK,
            [market.cea.pk, 101, 120, a_acc.pk],
        )

    assert SerialBlock.objects.filter(asset=market.cea, first=101).exists()


INSERT_TRANSACTION = (
    "INSERT INTO exchange_transaction "
    "(kind, actor_label, idempotency_scope, request_hash, memo, metadata, created_at) "
    "VALUES ('transfer', 'raw sql', 'tests', '', 'raw', '{}', now()) RETURNING id"
)
INSERT_POSTING = (
    "INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after) "
    "VALUES (%s, %s, %s, %s, 0)"
)


@pytest.mark.django_db(transaction=True)
def test_unbalanced_raw_insert_fails_at_commit_not_at_insert():
    market = make_market()
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)
    before = snapshot()

    atomic = transaction.atomic()
    atomic.__enter__()
    try:
        with connection.cursor() as cursor:
            cursor.execute(INSERT_TRANSACTION)
            (txn_id,) = cursor.fetchone()
            cursor.execute(INSERT_POSTING, [txn_id, a_acc.pk, market.cea.pk, 5])
        inserted = Posting.objects.filter(transaction_id=txn_id).count()
    except BaseException:
        atomic.__exit__(*sys.exc_info())  # roll back, then fail with the insert's own error
        raise

    assert inserted == 1  # both inserts went through: the check is deferred
    with pytest.raises(
        IntegrityError, match=f"transaction {txn_id} does not balance in asset {market.cea.pk}"
    ):
        atomic.__exit__(None, None, None)  # COMMIT

    assert not Transaction.objects.filter(pk=txn_id).exists()
    assert snapshot() == before
    assert_reconciled()


@pytest.mark.django_db(transaction=True)
def test_balanced_raw_insert_commits():
    market = make_market()
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_TRANSACTION)
        (txn_id,) = cursor.fetchone()
        cursor.execute(INSERT_POSTING, [txn_id, a_acc.pk, market.cea.pk, -5])
        cursor.execute(INSERT_POSTING, [txn_id, b_acc.pk, market.cea.pk, 5])

    assert sorted(Posting.objects.filter(transaction_id=txn_id).values_list("quantity", flat=True)) == [-5, 5]


@pytest.mark.django_db(transaction=True)
def test_postings_cant_be_added_to_a_committed_transaction():
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    txn = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=30)
    before = snapshot()

    # Balanced on its own, so only the same-transaction rule can refuse it.
    both = INSERT_POSTING + ", (%s, %s, %s, %s, 0)"
    params = [txn.pk, a_acc.pk, market.cea.pk, -1, txn.pk, b_acc.pk, market.cea.pk, 1]
    with pytest.raises(IntegrityError, match=f"transaction {txn.pk} is committed"), transaction.atomic():
        _execute(both, params)

    assert snapshot() == before
