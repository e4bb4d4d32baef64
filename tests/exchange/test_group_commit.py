"""Group commit of single transfers (``exchange.group_commit``), with real connections in threads.

To make a group without relying on timing, a first transfer is held up by a balance row another connection keeps
locked: it leads, alone, and the transfers started meanwhile queue behind it. Released, it hands the lead to the
first of them, which writes them all in one transaction (one ``xmin`` on their journal rows).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from exchange import group_commit
from exchange.errors import IdempotencyConflict
from exchange.group_commit import transfer_group
from exchange.locks import lock_balances
from exchange.models import AuditEvent, IdempotentRequest, Posting, SerialMovement, Transaction
from exchange.services.sealing import audit_verify
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import assert_reconciled, balance, make_market

pytestmark = pytest.mark.django_db(transaction=True)


class Held:
    """A balance row kept locked by a connection of its own until ``release``."""

    def __init__(self, account: Any, asset: Any) -> None:
        self.locked = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(account, asset))
        self.thread.start()
        assert self.locked.wait(10)

    def _hold(self, account: Any, asset: Any) -> None:
        try:
            with transaction.atomic():
                lock_balances([(account.pk, asset.pk)])
                self.locked.set()
                self.released.wait(30)
        finally:
            connection.close()

    def release(self) -> None:
        self.released.set()
        self.thread.join(10)


def in_thread(call: Callable[[], Any], results: dict[str, Any], name: str) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = call()
        except Exception as exc:  # the outcome the test asserts
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def grouped(calls: dict[str, Callable[[], Any]], blocker: Callable[[], Any], held: Held) -> dict[str, Any]:
    """Run ``blocker`` (held up by ``held``), then ``calls`` while it waits, so that they form one group."""
    group = transfer_group()
    results: dict[str, Any] = {}
    threads = [in_thread(blocker, results, "blocker")]
    # The blocker leads alone: it has taken its group of one, and waits on the held row.
    wait_for(lambda: group.leading() and not group.queued())
    time.sleep(0.1)
    for n, (name, call) in enumerate(calls.items(), start=1):
        threads.append(in_thread(call, results, name))
        wait_for(lambda n=n: group.queued() == n)  # queued in this order
    held.release()
    for thread in threads:
        thread.join(30)
    return results


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[Any, ...]]]:
    """The rows of every group written: each member's entry id and the transaction (txid) that holds it."""
    groups: list[list[tuple[Any, ...]]] = []
    each = group_commit._each

    def recorded(statement: str, params: Any) -> list[tuple[Any, ...]]:
        rows = each(statement, params)
        groups.append(rows)
        return rows

    monkeypatch.setattr(group_commit, "_each", recorded)
    return groups


def world(n: int, units: int = 10) -> tuple[Any, list[tuple[Any, Any]], Any]:
    market = make_market()
    people = []
    for i in range(n):
        _, account, actor = market.holder(f"Holder{i}")
        market.give(account, units)
        people.append((account, actor))
    _, sink, _ = market.holder("Sink")
    return market, people, sink


def test_concurrent_transfers_commit_together_and_a_refusal_stays_its_own(written):
    # given eight holders of 10 units each, and a ninth whose transfer is held up by a locked row
    market, people, sink = world(9)
    cea = market.cea
    group = transfer_group()
    groups, grouped_before = group.groups, group.grouped
    events = AuditEvent.objects.count()
    held = Held(people[8][0], cea)

    def send(i: int, quantity: int) -> Callable[[], Any]:
        account, actor = people[i]
        return lambda: transfer_create(
            actor=actor, source=account, destination=sink, asset=cea, quantity=quantity, idempotency_key=f"k{i}"
        )

    # when eight transfers start while it waits, the fourth asking for more than its source holds
    results = grouped(
        {f"t{i}": send(i, 11 if i == 3 else i + 1) for i in range(8)},
        send(8, 2),
        held,
    )

    # then the seven others committed in one transaction, the refusal is the fourth's own
    refused = results.pop("t3")
    assert getattr(refused, "code", refused) == "insufficient_available"
    assert refused.details == {"account": people[3][0].number, "asset": "CEA-2024", "available": 10, "requested": 11}
    made = {name: txn for name, txn in results.items()}
    assert all(isinstance(txn, Transaction) for txn in made.values()), made
    [rows] = written
    assert [row[0] for row in rows] == ["posted"] * 3 + ["refused"] + ["posted"] * 4
    assert [row[1] for row in rows if row[1]] == [made[f"t{i}"].pk for i in range(8) if i != 3]
    assert len({row[8] for row in rows}) == 1  # one transaction (txid) holds the eight
    assert (group.groups - groups, group.grouped - grouped_before) == (1, 8)
    # with exact balances, and nothing of the refused transfer written, its key left free
    for i in range(8):
        sent = 0 if i == 3 else i + 1
        assert balance(people[i][0], cea) == (10 - sent, 0)
    assert balance(people[8][0], cea) == (8, 0)
    assert balance(sink, cea) == (sum(i + 1 for i in range(8) if i != 3) + 2, 0)
    assert not Posting.objects.filter(account=people[3][0], quantity__lt=0).exists()
    assert not IdempotentRequest.objects.filter(key="k3").exists()
    assert AuditEvent.objects.count() == events + 8
    # and each answer is what its commit wrote, and what a replay gives
    for i in range(8):
        if i == 3:
            continue
        txn = made[f"t{i}"]
        postings = Posting.objects.filter(transaction=txn).order_by("id")
        assert [(p.account.pk, p.quantity, p.balance_after) for p in txn._postings] == list(
            postings.values_list("account_id", "quantity", "balance_after")
        )
        assert [(m.first, m.last) for m in txn._movements] == list(
            SerialMovement.objects.filter(transaction=txn).order_by("id").values_list("first", "last")
        )
        assert send(i, i + 1)().pk == txn.pk
    assert Transaction.objects.filter(kind="transfer").count() == 8
    assert_reconciled()
    assert audit_verify().ok


def test_twins_with_one_key_in_one_group_answer_one_transfer():
    # given three holders; the third's transfer is held up by a locked row
    market, people, sink = world(3)
    cea = market.cea
    (a_acc, a), _, (c_acc, c) = people
    held = Held(c_acc, cea)

    def send(quantity: int) -> Callable[[], Any]:
        return lambda: transfer_create(
            actor=a, source=a_acc, destination=sink, asset=cea, quantity=quantity, idempotency_key="twin"
        )

    # when three requests with one key (two the same, one another) queue in one group
    results = grouped(
        {"first": send(4), "twin": send(4), "other": send(5)},
        lambda: transfer_create(actor=c, source=c_acc, destination=sink, asset=cea, quantity=1),
        held,
    )

    # then one transfer was made: the twin answers it, the other request is a conflict
    assert results["first"].pk == results["twin"].pk
    assert isinstance(results["other"], IdempotencyConflict)
    assert balance(a_acc, cea) == (6, 0)
    assert Transaction.objects.filter(kind="transfer", actor_participant_id=a.participant_id).count() == 1
    assert_reconciled()


def test_a_group_that_fails_before_its_commit_is_written_again_once_each(monkeypatch):
    # given a group whose transaction fails before its commit (the counters' lock refused, once)
    market, people, sink = world(4)
    cea = market.cea
    failures = []
    real = group_commit.lock_event_counters

    def refuse_once(ids: Any) -> None:
        if not failures:
            failures.append(1)
            raise DatabaseError("lost")
        real(ids)

    monkeypatch.setattr(group_commit, "lock_event_counters", refuse_once)
    held = Held(people[3][0], cea)

    def send(i: int) -> Callable[[], Any]:
        account, actor = people[i]
        return lambda: transfer_create(
            actor=actor, source=account, destination=sink, asset=cea, quantity=2, idempotency_key=f"k{i}"
        )

    # when three transfers queue into that group
    results = grouped({f"t{i}": send(i) for i in range(3)}, send(3), held)

    # then each is written once, alone, and nothing twice
    assert failures == [1]
    assert all(isinstance(r, Transaction) for r in results.values()), results
    assert len({r.pk for r in results.values()}) == 4
    for account, _ in people:
        assert balance(account, cea) == (8, 0)
    assert balance(sink, cea) == (8, 0)
    assert Transaction.objects.filter(kind="transfer").count() == 4
    assert_reconciled()


def test_a_lone_transfer_is_a_statement_of_its_own():
    # given nothing else queued
    market, people, sink = world(1)
    group = transfer_group()
    groups = group.groups
    (account, actor) = people[0]

    # when one transfer is made outside a transaction
    with CaptureStatements() as statements:
        txn = transfer_create(actor=actor, source=account, destination=sink, asset=market.cea, quantity=3)

    # then it ran alone, as one statement, in no group
    assert group.groups == groups
    assert [s for s in statements if "greenledger_transfer" in s] == [
        "SELECT * FROM greenledger_transfer(" + ", ".join(["%s"] * 28) + ")"
    ]
    assert balance(sink, market.cea) == (3, 0)
    assert Transaction.objects.filter(pk=txn.pk).exists()


class CaptureStatements:
    """The statements this thread's connection sends in the block."""

    def __enter__(self) -> list[str]:
        self.statements: list[str] = []
        self.wrapper = connection.execute_wrapper(self._record)
        self.wrapper.__enter__()
        return self.statements

    def __exit__(self, *exc: object) -> None:
        self.wrapper.__exit__(*exc)

    def _record(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements.append(sql)
        return execute(sql, params, many, context)


def test_a_process_killed_mid_group_loses_nothing_and_a_retry_makes_each_once():
    # given four keyed transfers, three of which a process writes as one group and is killed before its commit
    market, people, sink = world(4)
    cea = market.cea

    def send(i: int) -> Callable[[], Any]:
        account, actor = people[i]
        return lambda: transfer_create(
            actor=actor, source=account, destination=sink, asset=cea, quantity=2, idempotency_key=f"k{i}"
        )

    def doomed() -> None:
        os.environ["GREENLEDGER_CRASH_AT"] = "transfer_group.written"  # SIGKILL once the group's statements ran
        grouped({f"t{i}": send(i) for i in range(3)}, send(3), Held(people[3][0], cea))

    connection.close()
    child = multiprocessing.get_context("fork").Process(target=doomed)
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL

    # then the transfer made alone before the group committed, and nothing of the group did
    assert balance(people[3][0], cea) == (8, 0)
    assert [balance(people[i][0], cea) for i in range(3)] == [(10, 0)] * 3
    assert not IdempotentRequest.objects.filter(key__in=["k0", "k1", "k2"]).exists()

    # when the callers retry with their keys, twice
    first = [send(i)() for i in range(4)]
    again = [send(i)() for i in range(4)]

    # then each transfer was made once
    assert [t.pk for t in again] == [t.pk for t in first]
    for account, _ in people:
        assert balance(account, cea) == (8, 0)
    assert balance(sink, cea) == (8, 0)
    assert Transaction.objects.filter(kind="transfer").count() == 4
    assert_reconciled()
    assert audit_verify().ok


def test_a_member_failing_for_another_reason_raises_its_error_alone_and_the_others_commit(monkeypatch):
    # given a group in which one member's statement fails for a reason not its transfer's own (its destination
    # an account that does not exist, which only a broken caller could send)
    from django.db import IntegrityError

    from exchange.services import transfers

    market, people, sink = world(4)
    cea = market.cea
    broken = people[1][0].pk

    def member(params: list[Any], *rest: Any) -> group_commit.Member:
        if params[7] == broken:
            params[8] = 2**40  # p_dest: no such account
        return group_commit.Member(params, *rest)

    monkeypatch.setattr(transfers, "Member", member)
    held = Held(people[3][0], cea)

    def send(i: int) -> Callable[[], Any]:
        account, actor = people[i]
        return lambda: transfer_create(actor=actor, source=account, destination=sink, asset=cea, quantity=2)

    # when it is written with two others
    results = grouped({f"t{i}": send(i) for i in range(3)}, send(3), held)

    # then that caller gets the database's error, raised by its statement alone, and the others committed
    assert isinstance(results["t1"], IntegrityError), results["t1"]
    assert all(isinstance(results[name], Transaction) for name in ("t0", "t2", "blocker")), results
    assert balance(people[1][0], cea) == (10, 0)
    for i in (0, 2, 3):
        assert balance(people[i][0], cea) == (8, 0)
    assert balance(sink, cea) == (6, 0)
    assert_reconciled()
