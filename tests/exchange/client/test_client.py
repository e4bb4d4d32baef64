"""The trading client against a live server: real HTTP, the real API, no mocks."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from exchange.audit_proof import ProofError
from exchange.client import ApiError, Client, ConnectionFailed
from exchange.models import Retirement, Trade, Transaction
from exchange.services.sealing import audit_seal
from tests.helpers.ledger import balance
from tests.helpers.live import LossyProxy, in_session, make_live_market

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def market(live_server):
    with in_session():
        yield make_live_market(live_server.url)


def test_client_imports_without_django():
    code = "import sys, exchange.client, exchange.cli; sys.exit(1 if 'django' in sys.modules else 0)"

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr


def test_me_and_holdings(market):
    with Client(market.url, market.seller_token) as gl:
        me = gl.me()
        holdings = gl.holdings()

    assert (me["participant"]["name"], me["accounts"]) == ("Seller Steel", [market.seller.number])
    assert [(h["asset"], h["total"], h["held"], h["available"]) for h in holdings] == [("CEA-2024", 10_000, 0, 10_000)]


def test_transfer_moves_units_and_the_same_key_replays(market):
    with Client(market.url, market.seller_token) as gl:
        first = gl.transfer(destination=market.buyer.number, asset="CEA-2024", quantity=700, idempotency_key="k-1")
        again = gl.transfer(destination=market.buyer.number, asset="CEA-2024", quantity=700, idempotency_key="k-1")

    assert first["id"] == again["id"]
    assert [(r["first"], r["last"]) for r in first["serial_ranges"]] == [(1, 700)]
    assert balance(market.seller, market.exchange.cea) == (9_300, 0)
    assert balance(market.buyer, market.exchange.cea) == (700, 0)


def test_a_lost_answer_is_retried_with_the_same_key_and_moves_value_once(market):
    # given a proxy that forwards the first POST to the server and then answers 502 in its place
    proxy = LossyProxy(market.url, fail_first=1)
    try:
        with Client(proxy.url, market.seller_token, backoff=0.01) as gl:
            # when the client transfers through it
            txn = gl.transfer(
                source=market.seller.number, destination=market.buyer.number, asset="CEA-2024", quantity=250
            )
    finally:
        proxy.close()

    # then it retried with the same key and the server answered the first result: moved once
    assert [method for method, _, _ in proxy.seen] == ["POST", "POST"]
    keys = {key for _, _, key in proxy.seen}
    assert len(keys) == 1
    assert None not in keys
    assert Transaction.objects.filter(kind="transfer").count() == 1
    assert txn["id"] == Transaction.objects.get(kind="transfer").pk
    assert balance(market.buyer, market.exchange.cea) == (250, 0)


def test_each_call_draws_its_own_key(market):
    proxy = LossyProxy(market.url, fail_first=0)
    try:
        with Client(proxy.url, market.seller_token) as gl:
            for _ in range(2):
                gl.transfer(source=market.seller.number, destination=market.buyer.number, asset="CEA-2024", quantity=1)
    finally:
        proxy.close()

    keys = [key for _, _, key in proxy.seen]
    assert len(set(keys)) == 2
    assert None not in keys
    assert balance(market.buyer, market.exchange.cea) == (2, 0)


def test_gives_up_after_the_retries_with_connection_failed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes

    with (
        Client(f"http://127.0.0.1:{port}", "gl_x_y", retries=2, backoff=0.01) as gl,
        pytest.raises(ConnectionFailed) as caught,
    ):
        gl.me()

    assert (caught.value.code, caught.value.status) == ("connection_failed", 0)


def test_refusals_raise_api_error_with_the_code(market):
    with Client(market.url, market.seller_token) as gl, pytest.raises(ApiError) as caught:
        gl.transfer(destination=market.buyer.number, asset="CEA-2024", quantity=10_001)

    error = caught.value
    assert (error.status, error.code) == (409, "insufficient_available")
    assert error.message
    assert error.details
    assert balance(market.seller, market.exchange.cea) == (10_000, 0)


def test_a_bad_token_is_401(market):
    with Client(market.url, "gl_nope_nope") as gl, pytest.raises(ApiError) as caught:
        gl.me()

    assert (caught.value.status, caught.value.code) == (401, "authentication_failed")


def test_orders_trade_show_on_the_book_and_cancel(market):
    with Client(market.url, market.seller_token) as seller, Client(market.url, market.buyer_token) as buyer:
        # given two asks
        low = seller.place_order(asset="CEA-2024", side="sell", price="80.50", quantity=300)
        high = seller.place_order(asset="CEA-2024", side="sell", price="81.00", quantity=200)
        book = buyer.book("CEA-2024")
        # when the buyer lifts the lower one partly
        placed = buyer.place_order(asset="CEA-2024", side="buy", price="80.50", quantity=100)
        # and the seller cancels the higher one
        cancelled = seller.cancel_order(high["order"]["id"])
        open_orders = seller.orders(status="open")
        mine = buyer.trades()
        tape = buyer.market_trades("CEA-2024")

    assert book["previous_close"] == "80.00"
    assert [(lv["price"], lv["quantity"]) for lv in book["asks"]] == [("80.50", 300), ("81.00", 200)]
    assert placed["order"]["status"] == "filled"
    assert [(t["price"], t["quantity"]) for t in placed["trades"]] == [("80.50", 100)]
    assert (cancelled["status"], cancelled["end_reason"]) == ("cancelled", "cancelled")
    assert [(o["id"], o["remaining"]) for o in open_orders] == [(low["order"]["id"], 200)]
    assert [(t["side"], t["quantity"], t["settled"]) for t in mine] == [("buy", 100, False)]
    assert [t["id"] for t in tape] == list(Trade.objects.values_list("id", flat=True))


def test_placing_an_order_twice_with_one_key_places_it_once(market):
    with Client(market.url, market.seller_token) as gl:
        first = gl.place_order(asset="CEA-2024", side="sell", price="80.10", quantity=50, idempotency_key="o-1")
        again = gl.place_order(asset="CEA-2024", side="sell", price="80.10", quantity=50, idempotency_key="o-1")
        with pytest.raises(ApiError) as caught:
            gl.place_order(asset="CEA-2024", side="sell", price="80.20", quantity=50, idempotency_key="o-1")

    assert first["order"]["id"] == again["order"]["id"]
    assert caught.value.code == "idempotency_conflict"


def test_a_price_outside_the_band_is_refused(market):
    with Client(market.url, market.buyer_token) as gl, pytest.raises(ApiError) as caught:
        gl.place_order(asset="CEA-2024", side="buy", price="99.00", quantity=10)

    assert (caught.value.status, caught.value.code) == (409, "price_out_of_band")
    assert caught.value.details["high"] == "88.00"


def test_settle_and_statement(market):
    with Client(market.url, market.seller_token) as seller, Client(market.url, market.buyer_token) as buyer:
        seller.place_order(asset="CEA-2024", side="sell", price="80.00", quantity=100)
        buyer.place_order(asset="CEA-2024", side="buy", price="80.00", quantity=100)
        with Client(market.url, market.registry_token) as registry:  # settlement is the registry's
            batch = registry.settle()
        holdings = {h["asset"]: h["available"] for h in buyer.holdings()}
        lines = buyer.statement(asset="CEA-2024")

    assert (batch["status"], batch["trades_count"]) == ("completed", 1)
    assert holdings["CEA-2024"] == 100
    assert [line["quantity"] for line in lines] == [100]


def test_pledges_list_is_empty_for_a_new_participant(market):
    with Client(market.url, market.seller_token) as gl:
        assert gl.pledges() == []


def test_retire_then_verify_the_proof_locally(market):
    with Client(market.url, market.seller_token) as gl:
        retired = gl.retire(asset="CEA-2024", quantity=5, beneficiary="Beijing Marathon 2026", reason="event offset")
        event = retired["transaction"]["audit"]["event"]
        with pytest.raises(ApiError) as early:
            gl.audit_proof(event)
        audit_seal()
        checked = gl.verify_proof(event)
        proof = gl.audit_proof(event)

    assert early.value.code == "not_sealed"
    assert checked["seq"] == event
    assert checked["checkpoint"] == int(proof["checkpoint"]["number"])
    assert retired["certificate_url"].endswith(f"/registry/retirements/{Retirement.objects.get().pk}")


def test_verify_proof_refuses_a_wrong_trusted_hash(market):
    with Client(market.url, market.seller_token) as gl:
        retired = gl.retire(asset="CEA-2024", quantity=1, beneficiary="B", reason="R")
        audit_seal()
        with pytest.raises(ProofError):
            gl.verify_proof(retired["transaction"]["audit"]["event"], trusted_checkpoint_hash="0" * 64)
