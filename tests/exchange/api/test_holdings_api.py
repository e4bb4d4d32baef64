"""Accounts, holdings, serial blocks and statements (JSON with cursor pagination, and CSV)."""

from __future__ import annotations

import csv
import io

import pytest

from accounts.models import ParticipantKind, Role
from exchange.models import Account, HoldKind
from exchange.services.ledger import hold_place
from exchange.services.transfers import transfer_create
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import actor_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def traded(market):
    """A got 100, sent B 10, 20 and 30 (three transfers), and has 5 on hold."""
    _, a_acc, a = market.holder("A")
    _, b_acc, b = market.holder("B")
    market.give(a_acc, 100)
    for quantity in (10, 20, 30):
        transfer_create(
            actor=a,
            source=a_acc,
            destination=b_acc,
            asset=market.cea,
            quantity=quantity,
            memo=f"lot {quantity}",
        )
    hold_place(account=a_acc, asset=market.cea, quantity=5, kind=HoldKind.ORDER, reference="order:1")
    return a_acc, a, b_acc, b


def test_holdings(market, traded):
    a_acc, a, _, _ = traded

    response = client_for(a).get(f"/api/v1/accounts/{a_acc.number}/holdings")

    assert response.status_code == 200
    assert response.json() == [
        {"asset": "CEA-2024", "asset_kind": "allowance", "total": 40, "held": 5, "available": 35}
    ]


def test_blocks(market, traded):
    a_acc, a, _, _ = traded

    response = client_for(a).get(f"/api/v1/accounts/{a_acc.number}/blocks?asset=CEA-2024")

    assert response.status_code == 200
    # Blocks come in serial order (not newest first like other lists).
    rows = [
        (b["first"], b["last"], b["quantity"], b["state"], b["hold"] is not None) for b in response.json()["results"]
    ]
    assert rows == [(61, 65, 5, "held", True), (66, 100, 35, "available", False)]
    assert response.json()["count"] == 2


def test_statement_pages_with_a_cursor_newest_first(market, traded):
    a_acc, a, _, _ = traded
    client = client_for(a)

    first = client.get(f"/api/v1/accounts/{a_acc.number}/statement?page_size=3").json()
    second = client.get(first["next"]).json()

    lines = first["results"] + second["results"]
    assert [(line["kind"], line["quantity"], line["balance_after"]) for line in lines] == [
        ("transfer", -30, 40),
        ("transfer", -20, 70),
        ("transfer", -10, 90),
        ("allocation", 100, 100),
    ]
    assert [line["memo"] for line in lines[:3]] == ["lot 30", "lot 20", "lot 10"]
    assert all(line["asset"] == "CEA-2024" and line["time"].endswith("+08:00") for line in lines)
    assert second["next"] is None
    assert second["previous"] is not None
    assert "count" not in first


def test_statement_as_csv_oldest_first(market, traded):
    a_acc, a, _, _ = traded

    response = client_for(a).get(f"/api/v1/accounts/{a_acc.number}/statement?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="statement-{a_acc.number}.csv"'
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "posting",
        "transaction",
        "time",
        "kind",
        "asset",
        "quantity",
        "balance_after",
        "memo",
        "trades",
    ]
    assert [(r[3], r[4], r[5], r[6], r[7]) for r in rows[1:]] == [
        ("allocation", "CEA-2024", "100", "100", "Allocation of CEA-2024"),
        ("transfer", "CEA-2024", "-10", "90", "lot 10"),
        ("transfer", "CEA-2024", "-20", "70", "lot 20"),
        ("transfer", "CEA-2024", "-30", "40", "lot 30"),
    ]


def test_statement_filtered_by_an_unknown_asset_is_400(market, traded):
    a_acc, a, _, _ = traded

    response = client_for(a).get(f"/api/v1/accounts/{a_acc.number}/statement?asset=CEA-1999")

    assert error_of(response) == (400, "unknown_asset")


@pytest.mark.parametrize("path", ["", "/holdings", "/blocks", "/statement", "/statement?format=csv"])
def test_another_participants_account_is_not_found(market, traded, path):
    a_acc, _, _, b = traded

    response = client_for(b).get(f"/api/v1/accounts/{a_acc.number}{path}")

    assert error_of(response) == (404, "account_not_found")


def test_overseers_see_every_account(market, traded):
    a_acc, _, _, _ = traded
    auditor, _, _ = market.holder("Auditor", kind=ParticipantKind.AUDITOR)
    client = client_for(actor_for(auditor, role=Role.VIEWER))

    assert client.get(f"/api/v1/accounts/{a_acc.number}/holdings").status_code == 200
    listed = client.get("/api/v1/accounts?page_size=500").json()["results"]
    assert {a["number"] for a in listed} == set(Account.objects.values_list("number", flat=True))


def test_account_list_shows_own_accounts_and_an_admin_opens_another(market, traded):
    a_acc, a, _, _ = traded
    client = client_for(a)

    before = [acc["number"] for acc in client.get("/api/v1/accounts").json()["results"]]
    opened = client.post("/api/v1/accounts", {"name": "Trading book 2"}, format="json")
    after = [acc["number"] for acc in client.get("/api/v1/accounts").json()["results"]]

    assert before == [a_acc.number]
    assert opened.status_code == 201
    number = opened.json()["number"]
    assert number.startswith("CN-100-")
    assert sorted(after) == sorted([a_acc.number, number])


def test_accounts_filter_by_participant_and_refuse_ids_no_database_holds(market, traded):
    _, _, b_acc, _ = traded
    client = client_for(market.registry_actor)

    mine = client.get(f"/api/v1/accounts?participant={b_acc.participant_id}").json()["results"]
    too_big = client.get(f"/api/v1/accounts?participant={'9' * 30}")
    fraction = client.get("/api/v1/accounts?participant=1.5")

    assert [acc["number"] for acc in mine] == [b_acc.number]
    assert error_of(too_big) == (400, "max_value")
    assert error_of(fraction) == (400, "invalid")
