"""Statements show each trade's legs under the settlement lines: units leg, cash leg and the account's fee."""

from __future__ import annotations

import csv
import io

import pytest

from core import clock
from exchange.services.agreements import listing_pick, listing_post
from exchange.services.settlement import settlement_run
from tests.exchange.services.test_agreements import WEDNESDAY, National, at
from tests.exchange.services.test_proceeds import _sold
from tests.helpers.api import client_for

pytestmark = pytest.mark.django_db


def test_settlement_lines_list_their_trades_with_units_and_cash_legs_and_fees():
    nat = National()
    s_acc, seller, _ = _sold(nat)  # 100 t at 80.00, Wednesday 10:00
    _, o_acc, other = nat.trader("Other seller", units=500)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=50, client_order_id="o1"
        )
        bought = listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s2")  # paid from proceeds
    with clock.pinned(at(WEDNESDAY, 15, 5)):
        settlement_run(actor=nat.market.registry_actor)
    [purchase] = bought.trades
    api = client_for(seller)
    with clock.pinned(at(WEDNESDAY, 16)):
        lines = api.get(f"/api/v1/accounts/{s_acc.number}/statement").json()["results"]
        exported = api.get(f"/api/v1/accounts/{s_acc.number}/statement?format=csv")

    by_kind = [
        (line["kind"], line["asset"], line["quantity"], [leg["trade"] for leg in line["trades"]]) for line in lines
    ]
    sold_trade = next(leg["trade"] for line in lines for leg in line["trades"] if leg["side"] == "sell")
    # Newest first: the settlement's cash and units lines, then the early payment of the sale's cash.
    assert by_kind[:3] == [
        ("settlement", "CNY", "-96.00", [sold_trade, purchase.pk]),  # +3928.00 - 4024.00
        ("settlement", "CEA-2024", -50, [sold_trade, purchase.pk]),
        ("settlement", "CNY", "4024.00", [sold_trade]),
    ]
    cash_line = next(line for line in lines if line["asset"] == "CNY" and line["quantity"] == "-96.00")
    assert cash_line["trades"] == [
        {
            "trade": sold_trade,
            "asset": "CEA-2024",
            "side": "sell",
            "quantity": 100,
            "price": "80.00",
            "turnover": "8000.00",
            "units": -100,
            "cash": "+3928.00",  # 8000.00 less the 48.00 fee less the 4024.00 paid before settlement
            "fee": "48.00",
        },
        {
            "trade": purchase.pk,
            "asset": "CEA-2024",
            "side": "buy",
            "quantity": 50,
            "price": "80.00",
            "turnover": "4000.00",
            "units": 50,
            "cash": "-4024.00",
            "fee": "24.00",
        },
    ]
    early = next(line for line in lines if line["quantity"] == "4024.00")
    assert [(leg["trade"], leg["units"], leg["cash"], leg["fee"]) for leg in early["trades"]] == [
        (sold_trade, 0, "+4024.00", "0.00")
    ]
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig"))))
    settled = [row for row in rows if row["kind"] == "settlement" and row["asset"] == "CNY"]
    assert settled[-1]["trades"].startswith(f"trade {sold_trade} sell 100 CEA-2024 @ 80.00: units -100, cash +3928.00")
    assert all(row["trades"] == "" for row in rows if row["kind"] != "settlement")
