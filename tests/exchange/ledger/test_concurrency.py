"""Concurrency on real PostgreSQL: threads, each with its own database connection, racing for the same
rows. Exactly the right number of movements succeed, nothing goes negative, no deadlock reaches a
caller, and the invariants hold afterwards."""

from __future__ import annotations

import queue
import random
from collections import Counter
from datetime import date
from functools import partial

import pytest
from django.db.models import Min

from accounts.models import ParticipantKind
from exchange.models import Issuance, Posting, Transaction
from exchange.services.issuance import (
    AllocationRow,
    ccer_issue,
    cea_allocate,
    cea_vintage_create,
    project_register,
)
from exchange.services.transfers import transfer_create
from tests.helpers.concurrency import attempt, run_workers
from tests.helpers.ledger import assert_reconciled, balance, blocks, make_market

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_40_attempts_by_16_workers_to_move_10_out_of_100_exactly_10_succeed():
    market = make_market()
    _, a_acc, a = market.holder("A")
    destinations = [market.holder(name)[1] for name in ("B", "C", "D", "E")]
    market.give(a_acc, 100)
    attempts: queue.Queue[int] = queue.Queue()
    for n in range(40):
        attempts.put(n)

    def work(_: int) -> list[str]:
        done = []
        while True:
            try:
                n = attempts.get_nowait()
            except queue.Empty:
                return done
            destination = destinations[n % len(destinations)]
            move = partial(transfer_create, actor=a, source=a_acc, destination=destination, asset=market.cea)
            done.append(attempt(partial(move, quantity=10)))

    outcomes = run_workers(16, work)

    assert Counter(outcomes) == {"ok": 10, "insufficient_available": 30}
    assert balance(a_acc, market.cea) == (0, 0)
    assert sum(balance(d, market.cea)[0] for d in destinations) == 100
    assert Transaction.objects.filter(kind="transfer").count() == 10
    assert Posting.objects.filter(account=a_acc).aggregate(low=Min("balance_after"))["low"] == 0
    assert sorted(
        Posting.objects.filter(account=a_acc, quantity__lt=0).values_list("balance_after", flat=True)
    ) == [
        0,
        10,
        20,
        30,
        40,
        50,
        60,
        70,
        80,
        90,
    ]
    assert a_acc.number not in {holder for _, _, holder, _ in blocks(market.cea)}
    assert_reconciled()


def test_opposite_transfers_at_the_same_time_never_deadlock_a_caller():
    market = make_market()
    _, a_acc, a = market.holder("A")
    _, b_acc, b = market.holder("B")
    market.give(a_acc, 100)
    market.give(b_acc, 100)

    def work(index: int) -> list[str]:
        rng = random.Random(index)
        actor, source, destination = (a, a_acc, b_acc) if index % 2 == 0 else (b, b_acc, a_acc)
        return [
            attempt(
                partial(
                    transfer_create,
                    actor=actor,
                    source=source,
                    destination=destination,
                    asset=market.cea,
                    quantity=rng.randint(1, 40),
                )
            )
            for _ in range(15)
        ]

    outcomes = run_workers(12, work)

    assert len(outcomes) == 12 * 15
    assert set(outcomes) <= {"ok", "insufficient_available"}, Counter(outcomes)
    assert outcomes.count("ok") == Transaction.objects.filter(kind="transfer").count() > 0
    total_a, total_b = balance(a_acc, market.cea)[0], balance(b_acc, market.cea)[0]
    assert total_a >= 0
    assert total_b >= 0
    assert total_a + total_b == 200
    assert_reconciled()


def test_opposite_transfers_of_two_assets_never_deadlock_a_caller():
    market = make_market()
    cea_2025 = cea_vintage_create(actor=market.registry_actor, vintage=2025)
    _, a_acc, a = market.holder("A")
    _, b_acc, b = market.holder("B")
    for account in (a_acc, b_acc):
        market.give(account, 100)
        market.give(account, 100, asset=cea_2025)
    assets = [market.cea, cea_2025]

    def work(index: int) -> list[str]:
        rng = random.Random(1000 + index)
        actor, source, destination = (a, a_acc, b_acc) if index % 2 == 0 else (b, b_acc, a_acc)
        return [
            attempt(
                partial(
                    transfer_create,
                    actor=actor,
                    source=source,
                    destination=destination,
                    asset=assets[(index // 2 + n) % 2],
                    quantity=rng.randint(1, 30),
                )
            )
            for n in range(12)
        ]

    outcomes = run_workers(12, work)

    assert set(outcomes) <= {"ok", "insufficient_available"}, Counter(outcomes)
    for asset in assets:
        assert balance(a_acc, asset)[0] + balance(b_acc, asset)[0] == 200
    assert_reconciled()


def test_allocations_at_the_same_time_get_distinct_serials():
    market = make_market()
    accounts = [market.holder(f"Entity {n}")[1] for n in range(8)]

    def work(index: int) -> list[str]:
        return [
            attempt(
                lambda: cea_allocate(
                    actor=market.registry_actor,
                    asset=market.cea,
                    rows=[AllocationRow(accounts[index], 10 + index)],
                )
            )
        ]

    outcomes = run_workers(8, work)

    assert outcomes == ["ok"] * 8
    found = blocks(market.cea)
    assert sorted(b[2] for b in found) == sorted(a.number for a in accounts)
    assert sum(last - first + 1 for first, last, _, _ in found) == sum(10 + n for n in range(8))
    market.cea.refresh_from_db()
    assert market.cea.next_serial == sum(10 + n for n in range(8)) + 1
    assert_reconciled()


def test_one_issuance_reference_sent_six_times_at_once_issues_once():
    market = make_market()
    owner, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    project = project_register(
        actor=market.registry_actor,
        code="BJ-TZ-FOREST-001",
        name="Tongzhou afforestation",
        project_type="forestry",
        methodology="CCER-14-001-V01",
        location="Tongzhou",
        owner=owner,
        crediting_start=date(2021, 1, 1),
        crediting_end=date(2040, 12, 31),
    )
    issued: list[int] = []

    def work(_: int) -> list[str]:
        def issue() -> None:
            issuance = ccer_issue(
                actor=market.registry_actor,
                project=project,
                vintage=2023,
                monitoring_start=date(2021, 1, 1),
                monitoring_end=date(2023, 12, 31),
                quantity=5000,
                external_reference="CCER-ISS-2024-0001",
            )
            issued.append(issuance.pk)

        return [attempt(issue)]

    outcomes = run_workers(6, work)

    # The reference is a uniqueness rule (issue 13): one issues, the others are refused, none errs.
    assert sorted(outcomes) == ["duplicate_external_reference"] * 5 + ["ok"]
    assert len(issued) == 1
    assert Issuance.objects.count() == 1
    asset = Issuance.objects.get().asset
    assert balance(owner_acc, asset) == (5000, 0)
    assert blocks(asset) == [(1, 5000, owner_acc.number, "available")]
    assert_reconciled()
