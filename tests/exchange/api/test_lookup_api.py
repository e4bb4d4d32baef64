"""A transaction's page, and the lookup of any serial number: its block, holder and movements."""

from __future__ import annotations

import pytest

from exchange.models import AccountKind, HoldKind, Transaction
from exchange.services.ledger import hold_place
from exchange.services.retirement import retirement_create
from exchange.services.transfers import transfer_create
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import blocks, system

pytestmark = pytest.mark.django_db


@pytest.fixture
def split(market):
    """A got serials 1-100 and sent B 10, C 25 and D 40 out of that one block."""
    _, a_acc, a = market.holder("Shougang Steel")
    others = [market.holder(name) for name in ("Huaneng Power", "Jinyu Cement", "Yanshan Petrochemical")]
    allocation = market.give(a_acc, 100)
    transfers = [
        transfer_create(actor=a, source=a_acc, destination=acc, asset=market.cea, quantity=q)
        for (_, acc, _), q in zip(others, (10, 25, 40), strict=True)
    ]
    return a_acc, a, others, allocation, transfers


def test_three_partial_transfers_partition_the_block(market, split):
    a_acc, _, others, _, _ = split

    assert blocks(market.cea) == [
        (1, 10, others[0][1].number, "available"),
        (11, 35, others[1][1].number, "available"),
        (36, 75, others[2][1].number, "available"),
        (76, 100, a_acc.number, "available"),
    ]


@pytest.mark.parametrize(
    ("serial", "holder_index", "first", "last", "moved_by"),
    [
        (1, 0, 1, 10, 0),
        (10, 0, 1, 10, 0),
        (11, 1, 11, 35, 1),
        (35, 1, 11, 35, 1),
        (36, 2, 36, 75, 2),
        (75, 2, 36, 75, 2),
        (76, None, 76, 100, None),
        (100, None, 76, 100, None),
    ],
)
def test_serial_lookup_names_holder_and_transactions(
    market, split, serial, holder_index, first, last, moved_by
):
    a_acc, a, others, allocation, transfers = split
    holder_acc = a_acc if holder_index is None else others[holder_index][1]
    holder_name = "Shougang Steel" if holder_index is None else others[holder_index][0].name

    response = client_for(a).get(f"/api/v1/serials/CEA-2024/{serial}")

    assert response.status_code == 200
    body = response.json()
    assert (body["asset"], body["serial"], body["issued"]) == ("CEA-2024", serial, True)
    assert {k: body["block"][k] for k in ("first", "last", "state", "account", "account_kind", "holder")} == {
        "first": first,
        "last": last,
        "state": "available",
        "account": holder_acc.number,
        "account_kind": "holding",
        "holder": holder_name,
    }
    expected = [(allocation.pk, "allocation", system(AccountKind.ISSUANCE).number, a_acc.number)]
    if moved_by is not None:
        expected.append((transfers[moved_by].pk, "transfer", a_acc.number, holder_acc.number))
    assert [
        (m["transaction"], m["kind"], m["source"], m["destination"]) for m in body["movements"]
    ] == expected


def test_serial_lookup_after_retirement_and_on_hold(market, split):
    a_acc, a, _, _, _ = split
    retirement = retirement_create(
        actor=a, account=a_acc, asset=market.cea, quantity=5, beneficiary="B", reason="R", serials=(96, 100)
    )
    hold = hold_place(account=a_acc, asset=market.cea, quantity=5, kind=HoldKind.ORDER, reference="order:9")
    client = client_for(a)

    retired = client.get("/api/v1/serials/CEA-2024/98").json()
    held = client.get("/api/v1/serials/CEA-2024/77").json()
    seen_by_other = client_for(market.holders["Huaneng Power"][2]).get("/api/v1/serials/CEA-2024/77").json()

    sink = system(AccountKind.RETIREMENT)
    assert (retired["block"]["account"], retired["block"]["state"], retired["block"]["account_kind"]) == (
        sink.number,
        "retired",
        "retirement",
    )
    assert retired["movements"][-1]["transaction"] == retirement.transaction_id
    assert retired["movements"][-1]["state"] == "retired"
    assert (held["block"]["first"], held["block"]["last"], held["block"]["state"], held["block"]["hold"]) == (
        76,
        80,
        "held",
        hold.pk,
    )
    assert seen_by_other["block"]["hold"] is None  # someone else's hold is not named


def test_serial_lookup_of_an_unissued_serial_or_unknown_asset(market, split):
    _, a, _, _, _ = split
    client = client_for(a)

    unissued = client.get("/api/v1/serials/CEA-2024/101")
    unknown = client.get("/api/v1/serials/CEA-1999/1")

    assert unissued.status_code == 200
    assert unissued.json() == {
        "asset": "CEA-2024",
        "serial": 101,
        "issued": False,
        "block": None,
        "movements": [],
    }
    assert error_of(unknown) == (404, "not_found")
    assert unknown.json()["error"]["details"] == {"asset": "CEA-1999"}


def test_transaction_page_shows_postings_and_serial_ranges(market, split):
    a_acc, a, others, _, transfers = split
    txn = transfers[1]

    body = client_for(a).get(f"/api/v1/transactions/{txn.pk}").json()

    assert (body["id"], body["kind"], body["url"]) == (txn.pk, "transfer", f"/api/v1/transactions/{txn.pk}")
    assert [(p["account"], p["quantity"], p["balance_after"]) for p in body["postings"]] == [
        (a_acc.number, -25, 65),
        (others[1][1].number, 25, None),
    ]
    assert [(r["first"], r["last"], r["source"], r["destination"]) for r in body["serial_ranges"]] == [
        (11, 35, a_acc.number, others[1][1].number)
    ]


def test_transaction_page_is_for_parties_and_overseers(market, split):
    _, _, others, _, transfers = split
    txn = transfers[1]
    receiver = client_for(others[1][2])
    outsider = client_for(others[0][2])
    registry = client_for(market.registry_actor)

    assert receiver.get(f"/api/v1/transactions/{txn.pk}").json()["postings"][1]["balance_after"] == 25
    assert error_of(outsider.get(f"/api/v1/transactions/{txn.pk}")) == (404, "transaction_not_found")
    assert registry.get(f"/api/v1/transactions/{txn.pk}").status_code == 200
    missing = Transaction.objects.order_by("-pk").first().pk + 1000
    assert error_of(receiver.get(f"/api/v1/transactions/{missing}")) == (404, "transaction_not_found")


HUGE = "9" * 30


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/transactions/{HUGE}",
        f"/api/v1/retirements/{HUGE}",
        f"/api/v1/participants/{HUGE}",
        f"/api/v1/serials/CEA-2024/{HUGE}",
        f"/api/v1/accounts?participant={HUGE}",
        "/api/v1/accounts?participant=1e308",
        f"/api/v1/assets?vintage={HUGE}",
    ],
)
def test_numbers_too_large_for_the_database_are_never_a_500(market, split, url):
    _, a, _, _, _ = split

    response = client_for(a).get(url)

    assert response.status_code in {200, 400, 404}, (url, response.status_code)
