"""The market over HTTP: listing, cash, orders, the book, the tape, trades, settlement and who may do what."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ParticipantKind
from exchange.models import AuditEvent, Hold, MarketRules, Order, Trade
from tests.factories import MembershipFactory
from tests.helpers.api import error_of
from tests.helpers.ledger import balance
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


def client_for(participant) -> APIClient:
    client = APIClient()
    client.force_authenticate(MembershipFactory(participant=participant).user)
    return client


@pytest.fixture
def ex():
    return make_exchange()


def test_order_over_http_trades_and_settles(ex):
    seller, seller_acc, _ = ex.trader("Seller", units=500)
    buyer, buyer_acc, _ = ex.trader("Buyer", cash_fen=10_000_000)
    sell = client_for(seller).post(
        "/api/v1/orders",
        {"account": seller_acc.number, "asset": "CEA-2024", "side": "sell", "price": "80.50", "quantity": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sell-1",
    )
    assert sell.status_code == 201, sell.json()
    assert sell.json()["order"]["reserved"] == 100

    buy = client_for(buyer).post(
        "/api/v1/orders",
        {
            "account": buyer_acc.number,
            "asset": "CEA-2024",
            "side": "buy",
            "price": "81.00",
            "quantity": 40,
            "client_order_id": "b-1",
        },
        format="json",
    )

    assert buy.status_code == 201, buy.json()
    body = buy.json()
    assert body["order"]["status"] == "filled"
    assert [(t["price"], t["quantity"], t["settled"]) for t in body["trades"]] == [("80.50", 40, False)]
    book = client_for(buyer).get("/api/v1/market/CEA-2024/book").json()
    assert book["asks"] == [{"price": "80.50", "quantity": 60, "orders": 1}]
    assert book["previous_close"] == "80.00"
    tape = client_for(buyer).get("/api/v1/market/CEA-2024/trades").json()["results"]
    assert [(t["price"], t["quantity"]) for t in tape] == [("80.50", 40)]
    mine = client_for(seller).get("/api/v1/trades").json()["results"]
    assert [(t["side"], t["fee"]) for t in mine] == [("sell", "19.32")]

    # The registry settles (Decree 775 art. 5); the exchange operator no longer does.
    operator_client = client_for(ex.market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0])
    refused = operator_client.post("/api/v1/settlement/batches", HTTP_IDEMPOTENCY_KEY="settle-0")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "wrong_participant_kind")
    settled = client_for(ex.market.registry).post("/api/v1/settlement/batches", HTTP_IDEMPOTENCY_KEY="settle-1")
    assert settled.status_code == 201
    assert settled.json()["trades_count"] == 1
    assert settled.json()["cash_total"] == "3220.00"
    assert balance(buyer_acc, ex.cea) == (40, 0)


def test_the_same_idempotency_key_places_one_order(ex):
    seller, acc, _ = ex.trader("Seller", units=500)
    client = client_for(seller)
    payload = {"account": acc.number, "asset": "CEA-2024", "side": "sell", "price": "80.00", "quantity": 10}
    first = client.post("/api/v1/orders", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post("/api/v1/orders", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")
    other = client.post("/api/v1/orders", {**payload, "quantity": 11}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.json() == again.json()
    assert first.json()["order"]["client_order_id"] == "k"  # no client_order_id: the key is the order's id
    assert error_of(other) == (409, "idempotency_conflict")
    assert Order.objects.count() == 1


def test_the_key_identifies_the_request_and_the_client_order_id_the_order(ex):
    seller, acc, _ = ex.trader("Seller", units=500)
    client = client_for(seller)
    payload = {"account": acc.number, "asset": "CEA-2024", "side": "sell", "price": "80.00", "quantity": 10}
    first = client.post(
        "/api/v1/orders", {**payload, "client_order_id": "c-1"}, format="json", HTTP_IDEMPOTENCY_KEY="o-x"
    )

    # One key, another client_order_id: another request under a used key.
    other_id = client.post(
        "/api/v1/orders", {**payload, "client_order_id": "c-2"}, format="json", HTTP_IDEMPOTENCY_KEY="o-x"
    )
    # One client_order_id under a new key: a uniqueness rule, whether the order is the same or another.
    same_order = client.post(
        "/api/v1/orders", {**payload, "client_order_id": "c-1"}, format="json", HTTP_IDEMPOTENCY_KEY="o-y"
    )
    other_order = client.post(
        "/api/v1/orders",
        {**payload, "client_order_id": "c-1", "quantity": 11},
        format="json",
        HTTP_IDEMPOTENCY_KEY="o-z",
    )

    assert first.status_code == 201
    assert error_of(other_id) == (409, "idempotency_conflict")
    assert error_of(same_order) == (409, "duplicate_client_order_id")
    assert error_of(other_order) == (409, "duplicate_client_order_id")
    assert list(Order.objects.values_list("client_order_id", flat=True)) == ["c-1"]


def test_order_refusals_over_http(ex):
    seller, acc, _ = ex.trader("Seller", units=500)
    client = client_for(seller)
    base = {
        "account": acc.number,
        "asset": "CEA-2024",
        "side": "sell",
        "price": "80.00",
        "quantity": 10,
        "client_order_id": "x",
    }
    cases = [
        ({"price": "80.001"}, 400, "invalid"),
        ({"price": "99.00"}, 409, "price_out_of_band"),
        ({"quantity": "ten"}, 400, "invalid"),
        ({"asset": "CEA-1999"}, 400, "unknown_asset"),
        ({"account": "CN-100-999999"}, 404, "account_not_found"),
        ({"side": "short"}, 400, "invalid_choice"),
    ]
    for change, status_code, code in cases:
        response = client.post("/api/v1/orders", {**base, **change}, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (status_code, code), change
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "kind",
    [ParticipantKind.REGISTRY, ParticipantKind.EXCHANGE, ParticipantKind.VERIFIER, ParticipantKind.AUDITOR],
)
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_registry_exchange_verifier_and_auditor_may_not_trade(ex, kind, side):
    # Their own holding account with cash enough for the buy (units are never allocated to these kinds:
    # the sell is refused for the kind before its units are counted).
    participant, account, _ = ex.trader(f"A {kind}", cash_fen=10_000_000, kind=kind)
    holds, events = Hold.objects.count(), AuditEvent.objects.count()

    response = client_for(participant).post(
        "/api/v1/orders",
        {
            "account": account.number,
            "asset": "CEA-2024",
            "side": side,
            "price": "80.00",
            "quantity": 100,
            "client_order_id": "o-1",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    assert (response.status_code, response.json()["error"]["code"]) == (403, "wrong_participant_kind")
    assert Order.objects.count() == 0
    assert (Hold.objects.count(), AuditEvent.objects.count()) == (holds, events)
    assert (balance(account, ex.cea), balance(account, ex.cny)) == ((0, 0), (10_000_000, 0))


def test_another_participants_order_is_not_found(ex):
    seller, acc, _ = ex.trader("Seller", units=500)
    other, _, _ = ex.trader("Other")
    order = (
        client_for(seller)
        .post(
            "/api/v1/orders",
            {
                "account": acc.number,
                "asset": "CEA-2024",
                "side": "sell",
                "price": "80.00",
                "quantity": 10,
                "client_order_id": "o",
            },
            format="json",
        )
        .json()["order"]
    )
    for method, path in (("get", f"/api/v1/orders/{order['id']}"), ("post", f"/api/v1/orders/{order['id']}/cancel")):
        response = getattr(client_for(other), method)(path)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "order_not_found")
    cancelled = client_for(seller).post(f"/api/v1/orders/{order['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize("code", ["CEA-1999", "CNY"])  # CNY exists but is not listed
def test_an_unknown_or_unlisted_asset_in_the_path_is_not_found(ex, code):
    assert ex.cny.code == "CNY"
    viewer, _, _ = ex.trader("Viewer")
    operator = client_for(ex.market.holders["Beijing Green Exchange"][0])
    reads = [f"/api/v1/market/{code}/{page}" for page in ("book", "trades", "daily")]

    responses = [client_for(viewer).get(path) for path in reads]
    responses.append(operator.get(f"/api/v1/market/listings/{code}"))
    responses.append(operator.patch(f"/api/v1/market/listings/{code}", {"tradable": False}, format="json"))

    for response in responses:
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), response.request
        assert response.json()["error"]["details"] == {"asset": code}


def test_cash_is_booked_by_the_exchange_only(ex):
    entity, acc, _ = ex.trader("Entity")
    operator = ex.market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0]
    payload = {"account": acc.number, "amount": "1000.00", "reference": "BANK-1"}
    refused = client_for(entity).post("/api/v1/cash/deposits", payload, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "wrong_participant_kind")
    booked = client_for(operator).post("/api/v1/cash/deposits", payload, format="json")
    assert booked.status_code == 201
    again = client_for(operator).post("/api/v1/cash/deposits", payload, format="json")
    assert error_of(again) == (409, "duplicate_bank_reference")  # one booking per bank reference
    assert balance(acc, ex.cny) == (100_000, 0)
    too_much = client_for(operator).post(
        "/api/v1/cash/withdrawals", {**payload, "amount": "1000.01", "reference": "W-1"}, format="json"
    )
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (409, "insufficient_available")


def test_a_refusal_gives_cash_as_yuan_strings_and_units_as_integers(ex):
    entity, acc, _ = ex.trader("Entity", units=100, cash_fen=4_778_044_190)
    buyer, buyer_acc, _ = ex.trader("Buyer", cash_fen=1_000_050)
    operator = client_for(ex.market.holders["Beijing Green Exchange"][0])
    order = {"asset": "CEA-2024", "price": "80.00", "client_order_id": "o"}

    withdrawal = operator.post(
        "/api/v1/cash/withdrawals",
        {"account": acc.number, "amount": "49000000.00", "reference": "W-1"},
        format="json",
    )
    buy = client_for(buyer).post(
        "/api/v1/orders", {**order, "account": buyer_acc.number, "side": "buy", "quantity": 200}, format="json"
    )
    sell = client_for(entity).post(
        "/api/v1/orders", {**order, "account": acc.number, "side": "sell", "quantity": 101}, format="json"
    )

    assert withdrawal.status_code == 409
    assert withdrawal.json()["error"] == {
        "code": "insufficient_available",
        "message": f"Account {acc.number} has 47780441.90 CNY available; 49000000.00 requested.",
        "details": {"account": acc.number, "asset": "CNY", "available": "47780441.90", "requested": "49000000.00"},
    }
    # 80.00 x 200 = 16,000.00 yuan plus the 0.6% fee, 96.00
    assert buy.status_code == 409
    assert buy.json()["error"]["details"] == {
        "account": buyer_acc.number,
        "asset": "CNY",
        "available": "10000.50",
        "requested": "16096.00",
    }
    assert sell.status_code == 409
    assert sell.json()["error"]["details"] == {
        "account": acc.number,
        "asset": "CEA-2024",
        "available": 100,
        "requested": 101,
    }
    assert (balance(acc, ex.cny), balance(buyer_acc, ex.cny)) == ((4_778_044_190, 0), (1_000_050, 0))
    assert balance(acc, ex.cea) == (100, 0)
    assert Order.objects.count() == 0


def test_a_reference_price_out_of_range_is_refused_in_yuan(ex):
    from exchange.services.issuance import cea_vintage_create

    cea_vintage_create(actor=ex.market.registry_actor, vintage=2025)
    operator = client_for(ex.market.holders["Beijing Green Exchange"][0])

    refused = operator.post(
        "/api/v1/market/listings", {"asset": "CEA-2025", "reference_price": "10000000.01"}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "invalid",
        "message": "A reference price is positive and at most 10000000.00.",
        "details": {"reference_price": "10000000.01"},
    }
    assert not MarketRules.objects.filter(asset__code="CEA-2025").exists()


def test_settlement_run_is_for_the_exchange_and_batches_readable_by_overseers(ex):
    entity, _, _ = ex.trader("Entity")
    refused = client_for(entity).post("/api/v1/settlement/batches")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "wrong_participant_kind")
    assert client_for(entity).get("/api/v1/settlement/batches").status_code == 403
    auditor = ex.market.holder("Auditor", kind=ParticipantKind.AUDITOR)[0]
    assert client_for(auditor).get("/api/v1/settlement/batches").status_code == 200


def test_daily_bars_show_today_so_far_and_closed_days(ex):
    from exchange.services.day_close import day_close

    _, s_acc, s = ex.trader("Seller", units=500)
    buyer, b_acc, b = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(s, s_acc, "sell", 8100, 10)
    ex.order(b, b_acc, "buy", 8100, 10)
    bars = client_for(buyer).get("/api/v1/market/CEA-2024/daily").json()
    assert bars == [
        {
            "day": "2026-11-25",
            "open": "81.00",
            "high": "81.00",
            "low": "81.00",
            "close": "81.00",
            "volume": 10,
            "turnover": "810.00",
            "trades": 1,
            "final": False,
        }
    ]
    day_close(asset=ex.cea, day=IN_SESSION.date())
    assert client_for(buyer).get("/api/v1/market/CEA-2024/daily").json()[0]["final"] is True
    assert Trade.objects.count() == 1
