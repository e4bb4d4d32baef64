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
