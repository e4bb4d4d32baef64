"""Money fields take exactly the decimal strings the schema describes: anything else, however large its
exponent, is a 400 with a stable code (never ``decimal.Overflow`` as a 500), and changes nothing."""

from __future__ import annotations

import pytest

from core import clock
from exchange.api.fields import str_to_fen
from exchange.models import AuditEvent, Order, Posting
from tests.helpers.api import client_for, error_of
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = pytest.mark.django_db

BAD_MONEY = ["1e999999", "-1e999999", "1E+999999999", "9e-999999", "1_000", "١٢", " 12.00", "12.345", "0x10", 12, 1.5]


@pytest.fixture
def world():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        _, account, trader = ex.trader("Money trader", units=100, cash_fen=1_000_000)
    return ex, account, trader


def requests_for(ex, account, value):
    """(caller, method, path, body, money field) for every input that takes money."""
    return [
        (
            "trader",
            "post",
            "/api/v1/orders",
            {
                "account": account.number,
                "asset": "CEA-2024",
                "side": "buy",
                "price": value,
                "quantity": 1,
                "client_order_id": "m1",
            },
            "price",
        ),
        (
            "operator",
            "post",
            "/api/v1/cash/deposits",
            {"account": account.number, "amount": value, "reference": "r"},
            "amount",
        ),
        (
            "operator",
            "post",
            "/api/v1/market/listings",
            {"asset": "CEA-2024", "reference_price": value},
            "reference_price",
        ),
        # The tick is no longer a listing's field: it is the market rulebook's (a new version changes it).
        ("operator", "patch", "/api/v1/market/listings/CEA-2024", {"reference_price": value}, "reference_price"),
        (
            "trader",
            "post",
            "/api/v1/pledges",
            {
                "account": account.number,
                "lender": 1,
                "asset": "CEA-2024",
                "quantity": 1,
                "principal": value,
                "annual_rate_bp": 385,
                "maturity": "2027-11-25",
                "ltv_limit_bp": 7000,
                "margin_call_bp": 8000,
                "liquidation_bp": 9000,
            },
            "principal",
        ),
    ]


@pytest.mark.parametrize("value", BAD_MONEY, ids=[repr(v) for v in BAD_MONEY])
def test_money_that_isnt_a_two_place_decimal_string_is_a_400(world, value):
    ex, account, trader = world
    clients = {"trader": client_for(trader), "operator": client_for(ex.operator)}
    before = (Posting.objects.count(), Order.objects.count(), AuditEvent.objects.count())
    with clock.pinned(IN_SESSION):
        for caller, method, path, body, field in requests_for(ex, account, value):
            response = getattr(clients[caller], method)(path, body, format="json")
            assert error_of(response)[0] == 400, (path, response.content)
            assert field in response.json()["error"]["details"], (path, response.json())
            assert response.json()["error"]["details"][field] == [
                'Money is a decimal string with at most two places, e.g. "12.34".'
            ]
    assert (Posting.objects.count(), Order.objects.count(), AuditEvent.objects.count()) == before


def test_an_order_price_of_1e999999_alone_is_an_invalid_400(world):
    _, account, trader = world
    with clock.pinned(IN_SESSION):
        response = client_for(trader).post(
            "/api/v1/orders",
            {
                "account": account.number,
                "asset": "CEA-2024",
                "side": "buy",
                "price": "1e999999",
                "quantity": 1,
                "client_order_id": "o1",
            },
            format="json",
        )
    assert error_of(response) == (400, "invalid")


@pytest.mark.parametrize(
    ("text", "fen"), [("12.34", 1234), ("0.5", 50), ("007", 700), ("-0.01", -1), ("999999999999999.99", 10**17 - 1)]
)
def test_two_place_decimal_strings_parse_to_fen(text, fen):
    assert str_to_fen(text) == fen
