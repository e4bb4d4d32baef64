"""The single transfer's raw-SQL floor (``bench.transfers.floor_serial_transfers``) writes what a keyed
``transfer_create`` writes, row for row, and leaves books that reconcile and verify: a floor that did less
would flatter the service it measures."""

from __future__ import annotations

import pytest
from django.db import connection

from bench.checks import problems
from bench.fixtures import give_units, holders, world
from bench.transfers import Pool, floor_serial_transfers, service_transfers
from exchange.models import (
    AuditEvent,
    IdempotentRequest,
    ParticipantEvent,
    Posting,
    SerialBlock,
    SerialMovement,
    Transaction,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _url() -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _written(run) -> dict[str, int]:
    """The rows ``run`` added, by table."""
    tables = {
        "entries": Transaction,
        "postings": Posting,
        "movements": SerialMovement,
        "events": AuditEvent,
        "participant events": ParticipantEvent,
        "keys": IdempotentRequest,
    }
    before = {name: model.objects.count() for name, model in tables.items()}
    run()
    return {name: model.objects.count() - before[name] for name, model in tables.items()}


def _blocks(pool: Pool) -> list[tuple[int, int, int]]:
    """The pool's blocks as (holder's place in the pool, first, last), serials counted from the pool's lowest."""
    place = {h.account.pk: i for i, h in enumerate(pool.holders)}
    blocks = list(SerialBlock.objects.filter(account_id__in=place).values_list("account_id", "first", "last"))
    base = min(first for _, first, _ in blocks)
    return sorted((place[account], first - base, last - base) for account, first, last in blocks)


def test_the_floor_writes_what_the_service_writes_and_the_books_hold():
    w = world()
    # Two pools alike (six holders of one block of 1,000 units each): the same pairs and quantities from the
    # same seed move the same shapes of ranges in each.
    people = holders(12, label="floor")
    give_units(w, [h.account for h in people], 1_000)
    floor_pool, service_pool = (
        Pool(holders=people[i : i + 6], cea_id=w.cea.pk, cny_id=w.cny.pk, url=_url()) for i in (0, 6)
    )

    by_floor = _written(lambda: floor_serial_transfers(floor_pool, 12, seed=5))
    by_service = _written(lambda: service_transfers(service_pool, 12, seed=5))

    assert by_floor == by_service
    assert by_floor == {
        "entries": 12,
        "postings": 24,
        "movements": by_floor["movements"],
        "events": 12,
        "participant events": 24,  # the source's and the destination's, by the same projection trigger
        "keys": 12,
    }
    assert by_floor["movements"] >= 12
    assert _blocks(floor_pool) == _blocks(service_pool)
    # The same pairs and quantities moved the same units both times: each holder's blocks are merged,
    # and the ledger, the blocks and the audit trail agree (every invariant, invariant 5 included).
    assert problems() == []
