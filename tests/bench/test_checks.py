"""The bench's check after every row (``bench.checks``): reconcile and verify_audit, the raw-SQL floor's
bare entries excepted from invariant 5's "every entry has its audit event" and from nothing else."""

from __future__ import annotations

import pytest
from django.db import connection

from bench.checks import FLOOR_SCOPE, BooksBroken, books_clean, problems
from bench.transfers import FLOOR_JOURNAL, FLOOR_POSTINGS, FLOOR_UPDATE
from exchange.models import Balance
from exchange.services.cash import cash_asset
from tests.helpers.market import make_exchange

pytestmark = pytest.mark.django_db


def _bare_transfer(source, destination, fen: int, scope: str) -> None:
    """What the floor sends: both balances updated, a journal row, two postings, no audit event."""
    cash = cash_asset()
    s = Balance.objects.get(account=source, asset=cash)
    d = Balance.objects.get(account=destination, asset=cash)
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_UPDATE, [s.total - fen, s.pk])
        cursor.execute(FLOOR_UPDATE, [d.total + fen, d.pk])
        cursor.execute(FLOOR_JOURNAL, [scope])
        (txn,) = cursor.fetchone()
        cursor.execute(
            FLOOR_POSTINGS,
            [txn, source.pk, cash.pk, -fen, s.total - fen, txn, destination.pk, cash.pk, fen, d.total + fen],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred balance checks, now


@pytest.fixture
def two_with_cash():
    ex = make_exchange()
    _, a, _ = ex.trader("A", cash_fen=10_000)
    _, b, _ = ex.trader("B", cash_fen=10_000)
    return a, b


def test_a_clean_ledger_passes(two_with_cash):
    assert problems() == []
    assert books_clean("transfers") >= 0


def test_the_floors_bare_entries_pass(two_with_cash):
    a, b = two_with_cash
    _bare_transfer(a, b, 300, FLOOR_SCOPE)

    assert problems() == []


def test_a_bare_entry_of_anything_else_stops_the_bench(two_with_cash):
    a, b = two_with_cash
    _bare_transfer(a, b, 300, "transfer")

    found = problems()
    assert len(found) == 1
    assert found[0].startswith("[5 every entry has its audit event] transaction ")
    with pytest.raises(BooksBroken, match="after batch: 1 problems"):
        books_clean("batch")


def test_a_floor_entry_that_breaks_the_ledger_stops_the_bench(two_with_cash):
    a, b = two_with_cash
    _bare_transfer(a, b, 300, FLOOR_SCOPE)
    with connection.cursor() as cursor:  # a balance that no longer sums its postings
        cursor.execute("UPDATE exchange_balance SET total = total + 1 WHERE account_id = %s", [b.pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    assert any(p.startswith("[2 balance = postings]") for p in problems())


def _edit_the_last_event() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire pending deferred checks, or ALTER TABLE refuses
        cursor.execute("ALTER TABLE exchange_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE exchange_auditevent SET payload = payload || ' ' "
            "WHERE seq = (SELECT max(seq) FROM exchange_auditevent)"
        )
        cursor.execute("ALTER TABLE exchange_auditevent ENABLE TRIGGER USER")


def test_an_edited_unsealed_event_stops_the_bench(two_with_cash):
    _edit_the_last_event()

    found = problems()
    assert len(found) == 1
    assert found[0].startswith("[audit] event ")


def test_an_edited_sealed_event_stops_the_bench(two_with_cash):
    assert problems() == []  # seals every event and records the verified run
    _edit_the_last_event()

    found = problems()
    assert len(found) == 1
    assert found[0].startswith("[audit] ")
