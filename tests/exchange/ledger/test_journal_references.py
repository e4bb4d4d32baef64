"""The journal's references, checked once per statement (migration 0081) instead of per-row deferred foreign keys.

The same refusals as the foreign keys gave (SQLSTATE 23503, nothing written): a posting or serial movement
naming a missing entry, account or asset; deleting an account or asset the journal names. A delete racing a
posting waits for it, as it waited on the foreign key's lock, and is then refused.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from exchange.models import Account, Asset, Posting, SerialMovement
from tests.factories import AccountFactory, ParticipantFactory
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db

POSTING = "INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after) VALUES "
MOVEMENT = (
    "INSERT INTO exchange_serialmovement (transaction_id, asset_id, first, last, source_id, destination_id, state) "
    "VALUES "
)
MISSING = 10**12


def _refused(sql: str, params: list[object]) -> str:
    """Run ``sql`` in a savepoint; return the SQLSTATE it is refused with."""
    with pytest.raises(IntegrityError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return refused.value.__cause__.sqlstate  # type: ignore[union-attr]


@pytest.fixture
def journal():
    market = make_market()
    _, a_acc, _ = market.holder("Shougang")
    _, b_acc, _ = market.holder("Huaneng")
    txn = market.give(a_acc, 10)
    return market, txn, a_acc, b_acc


def test_the_journal_has_no_per_row_foreign_keys_and_its_triggers_are_statement_level():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid IN ('exchange_posting'::regclass, 'exchange_serialmovement'::regclass)"
        )
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE '%%_references' AND NOT tgisinternal "
            "AND (tgtype & 1) = 0 ORDER BY tgname"  # bit 0 set = FOR EACH ROW
        )
        assert [r[0] for r in cursor.fetchall()] == [
            "exchange_posting_references",
            "exchange_serialmovement_references",
        ]


@pytest.mark.parametrize("missing", ["transaction", "account", "asset"])
def test_a_posting_naming_a_missing_row_is_refused_and_nothing_is_written(journal, missing):
    market, txn, a_acc, b_acc = journal
    postings = Posting.objects.count()
    row = {"transaction": txn.pk, "account": b_acc.pk, "asset": market.cea.pk}
    row[missing] = MISSING

    # the bad row among good ones: the whole statement is refused
    state = _refused(
        POSTING + "(%s, %s, %s, 5, 5), (%s, %s, %s, -5, 0)",
        [row["transaction"], row["account"], row["asset"], txn.pk, a_acc.pk, market.cea.pk],
    )

    assert state == "23503"
    assert Posting.objects.count() == postings


@pytest.mark.parametrize("missing", ["transaction", "asset", "source", "destination"])
def test_a_movement_naming_a_missing_row_is_refused_and_nothing_is_written(journal, missing):
    market, txn, a_acc, b_acc = journal
    movements = SerialMovement.objects.count()
    row = {"transaction": txn.pk, "asset": market.cea.pk, "source": a_acc.pk, "destination": b_acc.pk}
    row[missing] = MISSING

    state = _refused(
        MOVEMENT + "(%s, %s, 1, 2, %s, %s, 'available')",
        [row["transaction"], row["asset"], row["source"], row["destination"]],
    )

    assert state == "23503"
    assert SerialMovement.objects.count() == movements


def test_good_references_insert_as_before(journal):
    market, txn, a_acc, b_acc = journal
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            MOVEMENT + "(%s, %s, 1000001, 1000002, %s, %s, 'available')", [txn.pk, market.cea.pk, a_acc.pk, b_acc.pk]
        )
        assert cursor.rowcount == 1
        transaction.set_rollback(True)


def test_an_account_the_journal_names_is_never_deleted(journal):
    _, _, a_acc, _ = journal
    # The other tables' foreign keys are deferred to commit: the refusal at the statement is the journal's.
    state = _refused("DELETE FROM exchange_account WHERE id = %s", [a_acc.pk])
    assert state == "23503"
    assert Account.objects.filter(pk=a_acc.pk).exists()


def test_an_account_named_only_by_a_movement_is_never_deleted(journal):
    market, txn, a_acc, _ = journal
    bystander = AccountFactory(participant=ParticipantFactory(name="Bystander"))
    with connection.cursor() as cursor:
        cursor.execute(
            MOVEMENT + "(%s, %s, 2000001, 2000002, %s, %s, 'available')",
            [txn.pk, market.cea.pk, a_acc.pk, bystander.pk],
        )
    assert _refused("DELETE FROM exchange_account WHERE id = %s", [bystander.pk]) == "23503"


def test_an_asset_the_journal_names_is_never_deleted_and_an_unnamed_account_is(journal):
    market, _, _, _ = journal
    state = _refused("DELETE FROM exchange_asset WHERE id = %s", [market.cea.pk])
    assert state == "23503"
    assert Asset.objects.filter(pk=market.cea.pk).exists()

    unnamed = AccountFactory(participant=ParticipantFactory(name="Nobody"))
    Account.objects.filter(pk=unnamed.pk).delete()
    assert not Account.objects.filter(pk=unnamed.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_delete_racing_a_posting_waits_for_it_then_is_refused():
    market = make_market()
    _, a_acc, _ = market.holder("Shougang")
    fresh = AccountFactory(participant=ParticipantFactory(name="Fresh"))
    txn = market.give(a_acc, 10)
    url = connection.settings_dict
    dsn = f"host={url['HOST']} port={url['PORT'] or 5432} dbname={url['NAME']} user={url['USER']}"

    with psycopg.connect(dsn) as poster, psycopg.connect(dsn) as deleter:
        # the poster names the fresh account in a movement and has not committed yet
        poster.execute(
            MOVEMENT + "(%s, %s, 3000001, 3000002, %s, %s, 'available')",
            [txn.pk, market.cea.pk, a_acc.pk, fresh.pk],
        )
        # a delete of that account waits on the poster's lock (as it waited on the foreign key's)
        deleter.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            deleter.execute("DELETE FROM exchange_account WHERE id = %s", [fresh.pk])
        deleter.rollback()
        poster.commit()
        # once the poster has committed, the delete is refused
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            deleter.execute("DELETE FROM exchange_account WHERE id = %s", [fresh.pk])
        deleter.rollback()
    assert Account.objects.filter(pk=fresh.pk).exists()
