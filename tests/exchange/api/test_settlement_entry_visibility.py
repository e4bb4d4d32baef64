"""A settlement batch is one journal entry for the whole market: a participant reading it sees its own legs
only (its accounts' postings, its serial ranges without the counterparty's account); the overseers see all."""

from __future__ import annotations

import pytest

from core import clock
from exchange.services.settlement import settlement_run
from tests.helpers.api import client_for
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        seller_1 = ex.trader("Seller 1", units=100)
        buyer_1 = ex.trader("Buyer 1", cash_fen=10_000_000)
        seller_2 = ex.trader("Seller 2", units=100)
        buyer_2 = ex.trader("Buyer 2", cash_fen=10_000_000)
        ex.order(seller_1[2], seller_1[1], "sell", 8000, 10)
        ex.order(buyer_1[2], buyer_1[1], "buy", 8000, 10)
        ex.order(seller_2[2], seller_2[1], "sell", 8100, 7)
        ex.order(buyer_2[2], buyer_2[1], "buy", 8100, 7)
        settled = settlement_run()
    assert settled.trades_count == 2
    parties = {"seller_1": seller_1, "buyer_1": buyer_1, "seller_2": seller_2, "buyer_2": buyer_2}
    return ex, settled.transaction_id, parties


def accounts_in(body) -> set[str]:
    found = {p["account"] for p in body["postings"]}
    for movement in body["serial_ranges"]:
        found |= {movement["source"], movement["destination"]} - {None}
    return found


@pytest.mark.parametrize("who", ["seller_1", "buyer_1", "seller_2", "buyer_2"])
def test_a_party_sees_only_its_own_legs_of_the_batch(batch, who):
    _, txn, parties = batch
    _, account, actor = parties[who]

    response = client_for(actor).get(f"/api/v1/transactions/{txn}")

    assert response.status_code == 200
    body = response.json()
    assert accounts_in(body) == {account.number}
    assert {p["asset"] for p in body["postings"]} == {"CEA-2024", "CNY"}
    units = next(p for p in body["postings"] if p["asset"] == "CEA-2024")
    assert units["quantity"] == {"seller_1": -10, "buyer_1": 10, "seller_2": -7, "buyer_2": 7}[who]
    [movement] = body["serial_ranges"]
    assert movement["last"] - movement["first"] + 1 == abs(units["quantity"])
    others = {p[1].number for name, p in parties.items() if name != who}
    assert not others & set(response.content.decode().split('"'))


@pytest.mark.parametrize("overseer", ["registry", "exchange"])
def test_the_overseers_see_every_leg(batch, overseer):
    ex, txn, parties = batch
    actor = ex.market.registry_actor if overseer == "registry" else ex.operator
    body = client_for(actor).get(f"/api/v1/transactions/{txn}").json()
    assert {p[1].number for p in parties.values()} <= accounts_in(body)
    assert len(body["serial_ranges"]) == 2
    assert all(m["source"] and m["destination"] for m in body["serial_ranges"])


def test_a_non_party_still_gets_404(batch):
    ex, txn, _ = batch
    _, _, stranger = ex.trader("Stranger")
    assert client_for(stranger).get(f"/api/v1/transactions/{txn}").status_code == 404
