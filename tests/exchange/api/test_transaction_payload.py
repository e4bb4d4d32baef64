"""The transaction body the API builds directly is, key for key and in order, what ``TransactionOut`` renders."""

from __future__ import annotations

import json

import pytest

from exchange.api.representations import TransactionOut, transaction_payload
from exchange.models import Posting, SerialMovement, Transaction
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


def _from_database(txn: Transaction) -> Transaction:
    fresh = Transaction.objects.get(pk=txn.pk)
    fresh._postings = list(  # type: ignore[attr-defined]
        Posting.objects.filter(transaction=fresh).select_related("account", "asset").order_by("id")
    )
    fresh._movements = list(  # type: ignore[attr-defined]
        SerialMovement.objects.filter(transaction=fresh).select_related("asset", "source", "destination").order_by("id")
    )
    return fresh


@pytest.mark.parametrize("viewer", ["sender", "receiver", "registry"])
def test_the_direct_body_matches_the_serializer(viewer):
    market = make_market()
    _, a_acc, a = market.holder("Shougang")
    _, b_acc, b = market.holder("Huaneng")
    allocation = market.give(a_acc, 100)
    transfer = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=30, memo="m")
    actor = {"sender": a, "receiver": b, "registry": market.registry_actor}[viewer]

    for txn in (transfer, _from_database(transfer), _from_database(allocation)):
        direct = transaction_payload(txn, {"actor": actor})
        serialised = TransactionOut(txn, context={"actor": actor}).data
        assert json.dumps(direct) == json.dumps(serialised)
