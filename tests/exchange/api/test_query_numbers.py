"""Whole numbers in query parameters and CSV cells are ASCII digits: a superscript or another script's digit
(which ``str.isdigit`` accepts and ``int`` refuses) is a 400, never a 500."""

from __future__ import annotations

import pytest

from exchange.models import AuditEvent, Posting
from exchange.services.sealing import audit_seal
from tests.helpers.api import client_for, error_of

pytestmark = pytest.mark.django_db

NOT_ASCII_DIGITS = ["²", "١٢", "\uff12\uff10\uff12\uff14", "2024²", "-1", "1.0", "99999999999999999999999"]


@pytest.mark.parametrize("year", NOT_ASCII_DIGITS)
def test_a_compliance_statement_year_that_isnt_ascii_digits_is_a_400(market, year):
    participant, _, actor = market.holder("Entity")
    response = client_for(actor).get(f"/api/v1/compliance/entities/{participant.pk}/statement", {"year": year})
    assert error_of(response) == (400, "invalid")
    assert set(response.json()["error"]["details"]) == {"year"}


def test_a_compliance_statement_year_out_of_range_is_a_400_and_a_good_one_answers(market):
    participant, _, actor = market.holder("Entity")
    client = client_for(actor)
    url = f"/api/v1/compliance/entities/{participant.pk}/statement"
    assert error_of(client.get(url, {"year": "1999"})) == (400, "invalid")
    assert client.get(url, {"year": "2024"}).status_code == 200
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("to", NOT_ASCII_DIGITS)
def test_an_audit_proof_checkpoint_that_isnt_ascii_digits_is_a_400(market, to):
    market.give(market.holder("Entity")[1], 10)
    audit_seal()
    event = AuditEvent.objects.order_by("seq").first()
    response = client_for(market.registry_actor).get(f"/api/v1/audit/events/{event.seq}/proof", {"to": to})
    assert error_of(response) == (400, "invalid")
    assert set(response.json()["error"]["details"]) == {"to"}


@pytest.mark.parametrize("quantity", ["²", "١٢", "\uff11\uff12"])
def test_an_allocation_csv_quantity_in_other_digits_is_a_line_error(market, quantity):
    _, account, _ = market.holder("Entity")
    before = Posting.objects.count()
    response = client_for(market.registry_actor).post(
        "/api/v1/allocations/csv?asset=CEA-2024",
        data=f"account,quantity\n{account.number},{quantity}\n",
        content_type="text/csv",
    )
    assert response.status_code == 400, response.content
    assert "invalid_quantity" in response.content.decode()
    assert Posting.objects.count() == before
