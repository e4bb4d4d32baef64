"""A bulk allocation is one journal entry booking many entities: an entity reading it sees its own posting and
serial range and the entry's totals, not who else was allocated what; the overseers see every posting; an
entry with one counterparty (a transfer) still shows both sides to both (exchange.selectors.transactions)."""

from __future__ import annotations

import pytest

from exchange.services.issuance import AllocationRow, cea_allocate
from exchange.services.transfers import transfer_create
from tests.helpers.api import client_for
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db

ALLOCATED = {"Shougang": 300, "Huaneng": 200, "Jinyu": 100}


@pytest.fixture
def allocation():
    market = make_market()
    holders = {name: market.holder(name) for name in ALLOCATED}
    rows = [AllocationRow(account=holders[name][1], quantity=quantity) for name, quantity in ALLOCATED.items()]
    txn = cea_allocate(actor=market.registry_actor, asset=market.cea, rows=rows)
    return market, txn.pk, holders


def accounts_in(body) -> set[str]:
    found = {p["account"] for p in body["postings"]}
    for movement in body["serial_ranges"]:
        found |= {movement["source"], movement["destination"]} - {None}
    return found


@pytest.mark.parametrize("who", list(ALLOCATED))
def test_an_entity_sees_its_own_allocation_and_the_entrys_totals_only(allocation, who):
    market, txn, holders = allocation
    _, account, actor = holders[who]

    response = client_for(actor).get(f"/api/v1/transactions/{txn}")

    assert response.status_code == 200
    body = response.json()
    quantity = ALLOCATED[who]
    assert body["postings"] == [
        {"account": account.number, "asset": market.cea.code, "quantity": quantity, "balance_after": quantity}
    ]
    [movement] = body["serial_ranges"]
    assert (movement["source"], movement["destination"]) == (None, account.number)
    assert movement["last"] - movement["first"] + 1 == ALLOCATED[who]
    assert body["totals"] == [{"asset": market.cea.code, "quantity": 600, "postings": 6}]  # 3 credits, 3 debits
    others = {holder[1].number for name, holder in holders.items() if name != who}
    assert not others & set(response.content.decode().split('"'))
    assert accounts_in(body) == {account.number}


def test_the_registry_sees_every_allocated_account(allocation):
    market, txn, holders = allocation

    body = client_for(market.registry_actor).get(f"/api/v1/transactions/{txn}").json()

    assert {holder[1].number for holder in holders.values()} < accounts_in(body)  # and the issuance account
    assert len(body["postings"]) == 6  # each row a credit and its debit of the issuance account
    assert len(body["serial_ranges"]) == 3
    assert body["totals"] == [{"asset": market.cea.code, "quantity": 600, "postings": 6}]


def test_a_transfer_shows_both_sides_to_both_parties(allocation):
    market, _, holders = allocation
    (_, source, sender), (_, destination, receiver) = holders["Shougang"], holders["Huaneng"]
    txn = transfer_create(actor=sender, source=source, destination=destination, asset=market.cea, quantity=30)

    for actor in (sender, receiver):
        body = client_for(actor).get(f"/api/v1/transactions/{txn.pk}").json()
        assert [(p["account"], p["quantity"]) for p in body["postings"]] == [
            (source.number, -30),
            (destination.number, 30),
        ]
        assert body["totals"] == [{"asset": market.cea.code, "quantity": 30, "postings": 2}]


def test_a_non_party_still_gets_404(allocation):
    market, txn, _ = allocation
    _, _, stranger = market.holder("Stranger")

    assert client_for(stranger).get(f"/api/v1/transactions/{txn}").status_code == 404
