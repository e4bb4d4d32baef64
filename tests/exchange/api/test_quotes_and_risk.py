"""Public daily quotes (no login, JSON and CSV, per mode) and the risk reports for exchange staff."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core import clock
from exchange.services.agreements import block_accept, block_offer, listing_pick, listing_post
from tests.exchange.services.test_agreements import WEDNESDAY, National, at
from tests.helpers.api import client_for

pytestmark = pytest.mark.django_db


def _a_day_of_trading() -> National:
    nat = National()
    _, s_acc, seller = nat.trader("Seller", units=300_000)
    buyer_p, b_acc, buyer = nat.trader("Buyer", cash_fen=10**10)
    with clock.pinned(at(WEDNESDAY, 10)):
        first = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="l1"
        )
        listing_pick(actor=buyer, account=b_acc, listing=first, client_order_id="p1")
        second = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8200, quantity=300, client_order_id="l2"
        )
        listing_pick(actor=buyer, account=b_acc, listing=second, client_order_id="p2")
    with clock.pinned(at(WEDNESDAY, 13, 30)):
        offer = block_offer(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=10_000,
            quantity=100_000,
            counterparty=buyer_p,
            client_order_id="b1",
        )
        block_accept(actor=buyer, account=b_acc, offer=offer, client_order_id="a1")
    return nat


def test_daily_quotes_are_public_with_volume_and_turnover_per_mode():
    _a_day_of_trading()
    with clock.pinned(at(WEDNESDAY, 16)):
        body = APIClient().get("/api/v1/public/quotes", {"market": "CN-CEA", "day": "2026-11-25"})
        csv_body = APIClient().get("/api/v1/public/quotes.csv", {"day": "2026-11-25"})
        page = APIClient().get("/registry/market/quotes", {"day": "2026-11-25"})

    assert body.status_code == 200
    [quote] = body.json()
    assert (quote["market"], quote["asset"], quote["open"], quote["high"], quote["low"]) == (
        "CN-CEA",
        "CEA-2024",
        "80.00",
        "100.00",
        "80.00",
    )
    assert (quote["volume"], quote["trades"], quote["close_final"]) == (100_400, 3, False)
    assert quote["by_mode"] == {
        "block": {"volume": 100_000, "turnover": "10000000.00", "trades": 1},
        "listing": {"volume": 400, "turnover": "32600.00", "trades": 2},
    }
    assert quote["vwap"] == "99.93"  # 10,032,600.00 / 100,400 t
    assert csv_body.status_code == 200
    assert csv_body["Content-Type"].startswith("text/csv")
    assert "CN-CEA,CEA-2024,2026-11-25,80.00,100.00,80.00" in csv_body.content.decode()
    assert page.status_code == 200
    assert "CEA-2024" in page.content.decode()


def test_trading_alerts_and_large_holders_for_exchange_staff():
    nat = _a_day_of_trading()
    staff = client_for(nat.operator)
    trader = client_for(nat.market.holder("Buyer")[2])
    with clock.pinned(at(WEDNESDAY, 16)):
        alerts = staff.get("/api/v1/risk/alerts", {"day": "2026-11-25"})
        holders = staff.get("/api/v1/risk/large-holders")
        refused = trader.get("/api/v1/risk/alerts")

    # The block at 100.00 is 25 % from the previous close (80.00): beyond the 20 % alert threshold.
    far = [a for a in alerts.json() if a["kind"] == "far_from_close"]
    assert [(a["price_fen"], a["deviation_bp"]) for a in far] == [(10_000, 2500)]
    assert holders.status_code == 200
    assert refused.status_code == 403
