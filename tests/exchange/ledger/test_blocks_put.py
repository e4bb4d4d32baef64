"""``greenledger_blocks_put``, the one block writer of both posting paths: pieces merge with each other and with
their neighbours of the same holding (account, state, hold), and with nothing else."""

from __future__ import annotations

import pytest
from django.db import connection

from exchange.models import SerialBlock
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


def _put(asset, pieces):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT greenledger_blocks_put(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
            "%s::bigint[])",
            [
                [asset.pk] * len(pieces),
                [p[0] for p in pieces],
                [p[1] for p in pieces],
                [p[2] for p in pieces],
                [p[3] for p in pieces],
                [p[4] for p in pieces],
            ],
        )


def _blocks(asset):
    return list(
        SerialBlock.objects.filter(asset=asset).order_by("first").values_list("first", "last", "account_id", "state")
    )


def test_pieces_merge_with_each_other_and_with_neighbours_of_the_same_holding_only():
    market = make_market()
    _, a, _ = market.holder("Shougang")
    _, b, _ = market.holder("Huaneng")
    market.give(a, 100)
    SerialBlock.objects.filter(asset=market.cea).delete()

    # adjacent pieces of one holding become one block; another account's piece between them does not join
    _put(
        market.cea,
        [(1, 10, a.pk, "available", None), (11, 20, a.pk, "available", None), (21, 30, b.pk, "available", None)],
    )
    _put(market.cea, [(31, 100, a.pk, "available", None)])
    assert _blocks(market.cea) == [
        (1, 20, a.pk, "available"),
        (21, 30, b.pk, "available"),
        (31, 100, a.pk, "available"),
    ]

    # a piece between two neighbours of its holding joins them both (the neighbours go, one block stays)
    SerialBlock.objects.filter(asset=market.cea, account=b).delete()
    _put(market.cea, [(21, 30, a.pk, "available", None)])
    assert _blocks(market.cea) == [(1, 100, a.pk, "available")]


def test_a_held_piece_does_not_merge_with_available_units_nor_with_another_holds():
    market = make_market()
    _, a, _ = market.holder("Shougang")
    market.give(a, 30)
    SerialBlock.objects.filter(asset=market.cea).delete()
    from exchange.services.ledger import hold_place

    _put(market.cea, [(1, 10, a.pk, "available", None)])
    hold_one = hold_place(account=a, asset=market.cea, quantity=5, kind="order", reference="one")
    # the hold took serials 1-5: 6-10 stay available
    assert _blocks(market.cea) == [(1, 5, a.pk, "held"), (6, 10, a.pk, "available")]
    hold_two = hold_place(account=a, asset=market.cea, quantity=5, kind="order", reference="two")
    assert _blocks(market.cea) == [(1, 5, a.pk, "held"), (6, 10, a.pk, "held")]
    assert list(SerialBlock.objects.filter(asset=market.cea).order_by("first").values_list("hold_id", flat=True)) == [
        hold_one.pk,
        hold_two.pk,
    ]
    _put(market.cea, [(11, 20, a.pk, "held", hold_two.pk)])
    assert _blocks(market.cea) == [(1, 5, a.pk, "held"), (6, 20, a.pk, "held")]


def _scattered(a, b):
    """Twelve ranges in no order: runs of one holding, another account's range between, a held one apart."""
    return [
        (41, 50, a, "available", None),
        (1, 10, a, "available", None),
        (21, 30, a, "available", None),
        (11, 20, a, "available", None),
        (51, 60, b, "available", None),
        (61, 70, a, "available", None),
        (81, 90, a, "available", None),
        (71, 80, a, "available", None),
        (101, 110, a, "available", None),
        (91, 100, b, "available", None),
        (111, 120, a, "available", None),
        (31, 40, a, "available", None),
    ]


@pytest.mark.parametrize("one_call", [True, False], ids=["many ranges at once", "a few at a time"])
def test_ranges_put_many_at_once_or_a_few_at_a_time_make_the_same_blocks(one_call):
    """More than eight ranges are put set-wise, a few one by one: the blocks that result are the same."""
    market = make_market()
    _, a, _ = market.holder("Shougang")
    _, b, _ = market.holder("Huaneng")
    market.give(a, 10)
    SerialBlock.objects.filter(asset=market.cea).delete()
    pieces = _scattered(a.pk, b.pk)

    if one_call:
        _put(market.cea, pieces)
    else:
        for start in range(0, len(pieces), 3):
            _put(market.cea, pieces[start : start + 3])

    assert _blocks(market.cea) == [
        (1, 50, a.pk, "available"),
        (51, 60, b.pk, "available"),
        (61, 90, a.pk, "available"),
        (91, 100, b.pk, "available"),
        (101, 120, a.pk, "available"),
    ]


def test_a_block_that_takes_a_range_keeps_its_id_and_the_one_above_it_goes():
    market = make_market()
    _, a, _ = market.holder("Shougang")
    market.give(a, 10)
    SerialBlock.objects.filter(asset=market.cea).delete()
    _put(market.cea, [(1, 10, a.pk, "available", None), (21, 30, a.pk, "available", None)])
    below, above = SerialBlock.objects.filter(asset=market.cea).order_by("first")

    _put(market.cea, [(11, 20, a.pk, "available", None)])

    assert list(SerialBlock.objects.filter(asset=market.cea).values_list("id", "first", "last")) == [(below.pk, 1, 30)]
    assert not SerialBlock.objects.filter(pk=above.pk).exists()
