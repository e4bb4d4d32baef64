"""Refusals that say what to do: each message that misled a caller, with its code, its new text, and
nothing changed by the refusal."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ParticipantKind
from core import clock
from core.text import sentence
from exchange.models import Order, Transaction
from tests.helpers.api import client_for, error_of, token_for
from tests.helpers.ledger import actor_for, balance
from tests.helpers.market import IN_SESSION, make_exchange


@pytest.fixture
def parties(market):
    _, a_acc, a = market.holder("Shougang Steel")
    _, b_acc, _ = market.holder("Huaneng Power")
    market.give(a_acc, 100)
    return a, a_acc, b_acc


@pytest.fixture
def units(market):
    return lambda account: balance(account, market.cea)


def _transfer(a_acc, b_acc, **changes):
    return {"source": a_acc.number, "destination": b_acc.number, "asset": "CEA-2024", "quantity": 10} | changes


def test_a_token_without_its_keyword_is_told_to_add_it(parties):
    actor, _, _ = parties
    token = token_for(actor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token)  # "gl_..." without "Token "

    response = client.get("/api/v1/")

    assert error_of(response) == (401, "authentication_failed")
    message = response.json()["error"]["message"]
    assert "Authorization: Token gl_" in message
    assert "not provided" not in message
    assert token[8:] not in message  # the secret is never echoed


def test_a_form_encoded_body_is_told_to_send_json(parties, units):
    actor, a_acc, b_acc = parties
    client = client_for(actor)

    response = client.post(
        "/api/v1/transfers",
        data=f"source={a_acc.number}&destination={b_acc.number}&asset=CEA-2024&quantity=10",
        content_type="application/x-www-form-urlencoded",
    )

    assert error_of(response) == (415, "unsupported_media_type")
    body = response.json()["error"]
    assert "Content-Type: application/json" in body["message"]
    assert "required" not in body["message"]
    assert body["details"] == {"content_type": "application/x-www-form-urlencoded", "expected": "application/json"}
    assert units(a_acc) == (100, 0)
    assert not Transaction.objects.filter(kind="transfer").exists()


def test_a_trailing_slash_is_told_the_path_it_meant(parties, units):
    actor, a_acc, b_acc = parties

    response = client_for(actor).post("/api/v1/transfers/", _transfer(a_acc, b_acc), format="json")

    assert error_of(response) == (404, "not_found")
    body = response.json()["error"]
    assert body["message"] == (
        "No such endpoint: /api/v1/transfers/ ends with a slash; the API's paths don't. Use /api/v1/transfers."
    )
    assert body["details"] == {"path": "/api/v1/transfers/", "did_you_mean": "/api/v1/transfers"}
    assert units(a_acc) == (100, 0)


def test_an_unknown_path_is_still_plain_not_found(parties):
    actor, _, _ = parties

    response = client_for(actor).get("/api/v1/no-such-thing/")

    assert error_of(response) == (404, "not_found")
    assert response.json()["error"]["message"] == "No such endpoint or object."


def test_an_unknown_destination_is_not_called_not_yours(parties, units):
    actor, a_acc, b_acc = parties

    response = client_for(actor).post(
        "/api/v1/transfers", _transfer(a_acc, b_acc, destination="CN-100-999999"), format="json"
    )

    assert error_of(response) == (404, "account_not_found")
    body = response.json()["error"]
    assert body["message"] == (
        "No holding account CN-100-999999: check the destination's account number (like CN-100-000123)."
    )
    assert "not yours" not in body["message"]
    assert body["details"] == {"account": "CN-100-999999", "field": "destination"}
    assert units(a_acc) == (100, 0)


def test_an_unknown_source_is_still_none_of_yours(parties):
    actor, a_acc, b_acc = parties

    response = client_for(actor).post("/api/v1/transfers", _transfer(a_acc, b_acc, source=b_acc.number), format="json")

    assert error_of(response) == (404, "account_not_found")
    assert response.json()["error"]["message"] == "No such account, or not yours."


def test_a_quantity_sent_as_a_string_is_told_to_drop_the_quotes(parties, units):
    actor, a_acc, b_acc = parties

    response = client_for(actor).post("/api/v1/transfers", _transfer(a_acc, b_acc, quantity="10"), format="json")

    assert error_of(response) == (400, "invalid")
    body = response.json()["error"]
    assert body["details"] == {"quantity": ["A quantity is a JSON number, not a string: send 10 without quotes."]}
    assert "whole" not in body["message"]
    assert units(a_acc) == (100, 0)


def test_a_fractional_quantity_is_still_told_it_is_not_whole(parties):
    actor, a_acc, b_acc = parties

    response = client_for(actor).post("/api/v1/transfers", _transfer(a_acc, b_acc, quantity=10.5), format="json")

    assert error_of(response) == (400, "invalid")
    assert response.json()["error"]["details"] == {"quantity": ["A quantity is a whole number of tonnes."]}


@pytest.mark.django_db
def test_a_listing_order_too_large_is_told_both_ways_out():
    ex = make_exchange()
    _, acc, seller = ex.trader("Seller", units=200_000)

    with clock.pinned(IN_SESSION):
        response = client_for(seller).post(
            "/api/v1/orders",
            {"account": acc.number, "asset": ex.cea.code, "side": "sell", "price": "80.00", "quantity": 150_000},
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1",
        )

    assert error_of(response) == (409, "wrong_order_mode")
    body = response.json()["error"]
    assert body["message"] == (
        "A listing order is for less than 100,000 t; 150,000 t is a block trade. Agree it with a named counterparty "
        'as a block order (mode "block"), or split it into listing orders below 100,000 t.'
    )
    assert body["details"] == {"mode": "listing", "quantity": 150_000, "block_threshold": 100_000}
    assert not Order.objects.exists()
    assert balance(acc, ex.cea) == (200_000, 0)


@pytest.mark.django_db
def test_a_small_block_order_is_told_to_list_it():
    ex = make_exchange()
    _, acc, seller = ex.trader("Seller", units=200_000)

    with clock.pinned(IN_SESSION):
        response = client_for(seller).post(
            "/api/v1/orders",
            {
                "account": acc.number,
                "asset": ex.cea.code,
                "side": "sell",
                "price": "80.00",
                "quantity": 500,
                "mode": "block",
            },
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1",
        )

    assert error_of(response) == (409, "wrong_order_mode")
    assert response.json()["error"]["message"] == (
        'A block order is for at least 100,000 t; place 500 t as a listing order (mode "listing").'
    )


def test_the_wrong_participant_kind_is_told_whose_staff_may_and_how(market):
    # Settlement is the registry's (the settlement link table): the exchange operator is refused.
    exchange_operator = actor_for(market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0])
    response = client_for(exchange_operator).post(
        "/api/v1/settlement/batches", HTTP_IDEMPOTENCY_KEY="settle-as-exchange"
    )

    assert error_of(response) == (403, "wrong_participant_kind")
    body = response.json()["error"]
    assert body["message"] == (
        "Only staff of the registry operator may do this, and you act for the exchange operator: "
        "log in as a user of the registry operator."
    )
    assert "a registry" not in body["message"]
    assert body["details"] == {"allowed_kinds": ["registry"], "your_kind": "exchange"}


def test_a_name_ending_in_a_full_stop_ends_the_sentence_once():
    assert sentence("Issued 10 t to Jingneng Thermal Power Co.") == "Issued 10 t to Jingneng Thermal Power Co."
    assert sentence("Approved CN-100-000001 (Shougang)") == "Approved CN-100-000001 (Shougang)."
    assert sentence("已批准。") == "已批准。"


def test_the_admin_says_an_issuance_to_a_company_without_a_double_stop(market):
    from tests.helpers.api import admin_client_for

    owner, _, _ = market.holder("Tongzhou Forestry Carbon Sink Co.", kind="project_owner")
    staff = admin_client_for(market.registry_actor)
    project = staff.post(
        "/admin/exchange/project/add/",
        {
            "code": "BJ-TZ-F-9",
            "name": "Canal forest",
            "project_type": "forestry",
            "methodology": "CCER-14-001-V01",
            "location": "Tongzhou",
            "owner": owner.pk,
            "crediting_start": "2021-01-01",
            "crediting_end": "2040-12-31",
        },
    )
    assert project.status_code == 302, project.content[:1500]
    from exchange.models import Project

    page = staff.post(
        f"/admin/exchange/project/{Project.objects.get(code='BJ-TZ-F-9').pk}/issue/",
        {
            "vintage": 2023,
            "quantity": 500,
            "monitoring_start": "2023-01-01",
            "monitoring_end": "2023-12-31",
            "external_reference": "VR-9",
        },
        follow=True,
    )

    text = page.content.decode()
    assert "to Tongzhou Forestry Carbon Sink Co." in text
    assert "Co.." not in text


def test_the_settle_now_refusal_in_the_admin_names_the_login_to_use(market):
    from tests.helpers.api import admin_client_for

    # Settlement is the registry's: the exchange operator's staff are refused and told the login to use.
    exchange_operator = actor_for(market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0])
    response = admin_client_for(exchange_operator).post("/admin/exchange/settlementbatch/settle-now/", follow=True)

    text = response.content.decode()
    assert "Only staff of the registry operator may do this" in text
    assert "Only a registry" not in text


def test_the_front_page_answers_instead_of_a_404(market):
    response = Client().get("/")

    assert response.status_code == 200
    assert "/api/docs/" in response.content.decode()
    assert "/admin/" in response.content.decode()
