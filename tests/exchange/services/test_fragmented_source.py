"""Transfers from a source of many blocks take exactly the lowest serials, whichever path posts them.

The lowest-blocks read (``greenledger_lowest_blocks``) stops once the blocks read cover the quantity;
these tests hold the blocks taken, and those left behind, exact on a source of 1,000 blocks.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from exchange.models import SerialBlock, SerialMovement
from exchange.services.transfers import TransferOrder, transfer_create, transfers_batch_create
from tests.helpers.ledger import assert_reconciled, balance, make_market

pytestmark = pytest.mark.django_db

BLOCKS = 1000


def _fragmented(market):
    """A holder with ``BLOCKS`` one-unit blocks (serials 1, 3, 5, ... 1999), the even serials elsewhere."""
    _, source, actor = market.holder("Shougang")
    _, sink, _ = market.holder("Sink")
    market.give(source, 2 * BLOCKS)
    transfers_batch_create(
        actor=actor,
        transfers=[TransferOrder(source, sink, market.cea, 1, serials=(2 * i, 2 * i)) for i in range(1, BLOCKS + 1)],
    )
    assert SerialBlock.objects.filter(account=source, asset=market.cea, state="available").count() == BLOCKS
    return source, actor


def _ranges(account, asset):
    return list(SerialBlock.objects.filter(account=account, asset=asset).order_by("first").values_list("first", "last"))


def test_the_lowest_blocks_read_stops_at_the_quantity():
    market = make_market()
    source, _ = _fragmented(market)

    with connection.cursor() as cursor:
        cursor.execute("SELECT first, last FROM greenledger_lowest_blocks(%s, %s, %s)", [source.pk, market.cea.pk, 3])
        three = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM greenledger_lowest_blocks(%s, %s, %s)", [source.pk, market.cea.pk, 10**6])
        (every,) = cursor.fetchone()

    assert three == [(1, 1), (3, 3), (5, 5)]
    assert every == BLOCKS  # asked for more than there is: every block, for the caller to refuse


def test_a_transfer_from_a_source_of_a_thousand_blocks_takes_exactly_the_lowest():
    market = make_market()
    source, actor = _fragmented(market)
    _, dest, _ = market.holder("Huaneng")

    txn = transfer_create(actor=actor, source=source, destination=dest, asset=market.cea, quantity=5)

    assert [(m.first, m.last) for m in txn._movements] == [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]
    assert _ranges(dest, market.cea) == [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]
    left = _ranges(source, market.cea)
    assert len(left) == BLOCKS - 5
    assert left[0] == (11, 11)
    assert left[-1] == (2 * BLOCKS - 1, 2 * BLOCKS - 1)
    assert balance(source, market.cea) == (BLOCKS - 5, 0)
    assert list(SerialMovement.objects.filter(transaction_id=txn.pk).order_by("id").values_list("first", "last")) == [
        (1, 1),
        (3, 3),
        (5, 5),
        (7, 7),
        (9, 9),
    ]
    assert_reconciled()


def test_a_batch_from_a_source_of_a_thousand_blocks_takes_named_serials_then_the_lowest_left():
    market = make_market()
    source, actor = _fragmented(market)
    _, dest, _ = market.holder("Huaneng")

    result = transfers_batch_create(
        actor=actor,
        transfers=[
            TransferOrder(source, dest, market.cea, 1, serials=(1, 1)),
            TransferOrder(source, dest, market.cea, 3),
            TransferOrder(source, dest, market.cea, 1, serials=(1999, 1999)),
        ],
    )

    assert result.ranges == [[(1, 1)], [(3, 3), (5, 5), (7, 7)], [(1999, 1999)]]
    left = _ranges(source, market.cea)
    assert len(left) == BLOCKS - 5
    assert left[0] == (9, 9)
    assert left[-1] == (1997, 1997)
    assert _ranges(dest, market.cea) == [(1, 1), (3, 3), (5, 5), (7, 7), (1999, 1999)]
    assert balance(source, market.cea) == (BLOCKS - 5, 0)
    assert_reconciled()


def _rows_read(plan: dict) -> int:
    """Rows the plan's scans of the serial blocks returned, over all their loops."""
    scans_blocks = plan.get("Relation Name") == "exchange_serialblock"
    own = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1) if scans_blocks else 0
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


def test_taking_three_blocks_of_a_thousand_reads_three_blocks():
    market = make_market()
    source, _ = _fragmented(market)

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM greenledger_lowest_blocks(%s, %s, %s)",
            [source.pk, market.cea.pk, 3],
        )
        (explained,) = cursor.fetchone()

    plan = (explained if isinstance(explained, list) else json.loads(explained))[0]["Plan"]
    assert _rows_read(plan) == 3  # not the thousand a window over the account's blocks reads
