"""Pledge amendments over HTTP: the borrower applies, the lender confirms the amendment's terms, the registry
registers it (202 above the four-eyes threshold); the registration certificate lists the registered ones."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from exchange.models import PledgeAmendment
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import balance
from tests.helpers.pledges import make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ps():
    ps = make_pledges()
    ps.loan = ps.registered(500)
    return ps


def test_a_top_up_applied_confirmed_and_registered_over_http(ps):
    borrower, bank = client_for(ps.borrower[2]), client_for(ps.bank[2])
    registry = client_for(ps.ex.market.registry_actor)
    url = f"/api/v1/pledges/{ps.loan.pk}/amendments"

    created = borrower.post(url, {"kind": "top_up", "quantity": 100}, format="json", HTTP_IDEMPOTENCY_KEY="a-1")
    assert created.status_code == 201, created.json()
    again = borrower.post(url, {"kind": "top_up", "quantity": 100}, format="json", HTTP_IDEMPOTENCY_KEY="a-1")
    assert again.json()["id"] == created.json()["id"]
    assert PledgeAmendment.objects.count() == 1
    body = created.json()
    number = body["id"]
    assert (body["status"], body["quantity"], body["reference"]) == ("requested", 100, None)
    assert error_of(borrower.post(url, {"kind": "top_up", "quantity": 5}, format="json")) == (
        409,
        "pledge_amendment_open",
    )

    assert error_of(bank.post(f"{url}/{number}/confirm", {"terms_digest": "0" * 64}, format="json")) == (
        409,
        "pledge_terms_mismatch",
    )
    confirmed = bank.post(f"{url}/{number}/confirm", {"terms_digest": body["terms_digest"]}, format="json")
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "applied")
    assert error_of(bank.post(f"{url}/{number}/register")) == (403, "wrong_participant_kind")
    assert balance(ps.account, ps.cea) == (1000, 500)

    done = registry.post(f"{url}/{number}/register")

    assert done.status_code == 200, done.json()
    reference = f"{ps.loan.registration_reference}-A01"
    assert (done.json()["status"], done.json()["reference"], done.json()["serial_ranges"]) == (
        "registered",
        reference,
        [[501, 600]],
    )
    assert balance(ps.account, ps.cea) == (1000, 600)
    assert [a["reference"] for a in borrower.get(url).json()] == [reference]
    cache.clear()
    page = Client().get(f"/registry/pledges/{ps.loan.registration_reference}")
    assert page.status_code == 200
    assert reference in page.content.decode()
    cache.clear()


def test_above_the_threshold_registration_waits_for_four_eyes_and_others_see_404(ps, settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 99}
    borrower, bank = client_for(ps.borrower[2]), client_for(ps.bank[2])
    url = f"/api/v1/pledges/{ps.loan.pk}/amendments"
    body = borrower.post(url, {"kind": "partial_release", "quantity": 100}, format="json").json()
    bank.post(f"{url}/{body['id']}/confirm", {"terms_digest": body["terms_digest"]}, format="json")

    filed = client_for(ps.ex.market.registry_actor).post(f"{url}/{body['id']}/register")

    assert filed.status_code == 202, filed.json()
    assert PledgeAmendment.objects.get().status == "applied"
    assert balance(ps.account, ps.cea) == (1000, 500)
    stranger = client_for(ps.ex.trader("Someone else")[2])
    assert error_of(stranger.get(url)) == (404, "pledge_not_found")
    assert error_of(borrower.post(f"{url}/999999/confirm", {"terms_digest": "0" * 64}, format="json")) == (
        404,
        "pledge_not_found",
    )
