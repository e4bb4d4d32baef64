"""``manage.py reconcile``: a one-line summary and exit 0 when clean; non-zero naming each violation."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from exchange.models import AccountKind, Balance
from exchange.selectors.reconcile import check_names
from exchange.services.accounts import system_account
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=30)
    return market, a_acc, b_acc


def _reconcile(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@contextmanager
def _constraint_off(table: str, name: str) -> Iterator[None]:
    """Let a corrupting statement past a constraint: drop it inside the test's transaction (its rollback
    brings it back)."""
    _raw("SET CONSTRAINTS ALL IMMEDIATE")  # fire pending deferred checks, or ALTER TABLE refuses
    _raw(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    yield


def test_clean_ledger_prints_one_line_and_exits_0(ledger):
    code, out, err = _reconcile()

    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"reconcile: clean, {len(check_names())} checks over ")
    assert "2 transactions, 4 postings, 2 serial blocks, 1 asset" in lines[0]
    assert all(f"ok   {name}" in err for name in check_names())


def test_balance_changed_behind_the_journals_back_is_named(ledger):
    market, a_acc, _ = ledger
    _raw(
        "UPDATE exchange_balance SET total = total + 5 WHERE account_id = %s AND asset_id = %s",
        [a_acc.pk, market.cea.pk],
    )

    code, out, err = _reconcile()

    assert code == 1
    where = f"account {a_acc.pk} asset {market.cea.pk}"
    assert f"[2 balance = postings] {where}: balance 75 but postings sum to 70" in out
    assert "[3 supply conserved] CEA-2024: issued 100, held and sunk 105, serials handed out 100" in out
    assert f"[4 blocks = balances] {where}: balance 75 (0 held) but blocks hold 70 (0 held)" in out
    assert "FAIL 2 balance = postings" in err
    assert "reconcile: 3 violations in 3 of" in err
    assert "clean" not in out


def test_held_above_total_and_holds_disagreeing_are_named(ledger):
    market, _, b_acc = ledger
    with _constraint_off("exchange_balance", "balance_held_within_total"):
        _raw(
            "UPDATE exchange_balance SET held = 40 WHERE account_id = %s AND asset_id = %s",
            [b_acc.pk, market.cea.pk],
        )

    code, out, _ = _reconcile("--quiet")

    assert code == 1
    where = f"account {b_acc.pk} asset {market.cea.pk}"
    assert f"[2 held within total] {where}: held 40 outside 0..30" in out
    assert f"[2 held = active holds] {where}: held 40 but active holds reserve 0" in out


def test_overlapping_and_missing_serials_are_named(ledger):
    market, a_acc, _ = ledger
    # Shrink A's block 31-100 to 31-90 and give A a block overlapping B's 1-30.
    _raw("UPDATE exchange_serialblock SET last = 90 WHERE asset_id = %s AND first = 31", [market.cea.pk])
    with _constraint_off("exchange_serialblock", "block_no_overlap"):
        _raw(
            "INSERT INTO exchange_serialblock (asset_id, first, last, account_id, state) "
            "VALUES (%s, 25, 34, %s, 'available')",
            [market.cea.pk, a_acc.pk],
        )

    code, out, _ = _reconcile("--quiet")

    assert code == 1
    assert (
        "[4 blocks don't overlap and leave no gap] CEA-2024: block 25-34 overlaps the block ending at 30"
        in out
    )
    assert "[4 blocks cover the issued range] CEA-2024: 100 serials handed out, blocks end at 90" in out


def test_unbalanced_journal_entry_is_named(ledger):
    market, _, _ = ledger
    # PostgreSQL's deferred trigger refuses this when constraints are checked (at COMMIT, or as the test
    # ends), so the entry lives in a savepoint that is rolled back first.
    savepoint = transaction.savepoint()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO exchange_transaction "
                "(kind, actor_label, idempotency_scope, request_hash, memo, metadata, created_at) "
                "VALUES ('transfer', 'raw', 'tests', '', '', '{}', CURRENT_TIMESTAMP) RETURNING id"
            )
            (txn_id,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO exchange_posting "
                "(transaction_id, account_id, asset_id, quantity, balance_after) VALUES (%s, %s, %s, 5, 5)",
                [txn_id, system_account(AccountKind.RETIREMENT).pk, market.cea.pk],
            )
        code, out, _ = _reconcile("--quiet")
    finally:
        transaction.savepoint_rollback(savepoint)

    assert code == 1
    assert f"[1 balanced] transaction {txn_id} does not balance in asset {market.cea.pk}: net 5" in out


def test_balance_rows_are_not_append_only(ledger):
    market, a_acc, _ = ledger

    Balance.objects.filter(account=a_acc, asset=market.cea).update(total=70)

    assert _reconcile()[0] == 0


def test_violations_are_named_in_the_registry_language_and_kept_in_english(ledger):
    from django.utils import translation

    from exchange.selectors.reconcile import reconcile

    market, a_acc, _ = ledger
    _raw(
        "UPDATE exchange_balance SET total = total + 5 WHERE account_id = %s AND asset_id = %s",
        [a_acc.pk, market.cea.pk],
    )

    with translation.override("zh-hans"):  # manage.py speaks the registry's language (LANGUAGE_CODE)
        code, out, err = _reconcile()
        found = list(reconcile())

    assert code == 1
    where = f"账户 {a_acc.pk} 资产 {market.cea.pk}"
    assert f"[2 余额 = 记账明细合计] {where}：余额 75，而记账明细合计 70" in out
    assert "[3 总量守恒] CEA-2024：已签发 100，持有及注销合计 105，已分发序列号 100" in out
    assert f"reconcile：{len(check_names())} 项检查中有 3 项发现 3 处违反（" in err
    # what the nightly task logs stays English, whatever the language about
    assert f"account {a_acc.pk} asset {market.cea.pk}: balance 75 but postings sum to 70" in [v.message for v in found]
