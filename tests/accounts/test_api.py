"""The API root and the participant register; a suspended participant reads but every POST is refused."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Participant
from accounts.services import participant_suspend
from accounts.validators import make_uscc
from tests.factories import UserFactory
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import snapshot

pytestmark = pytest.mark.django_db


def test_api_root_says_who_you_are(market):
    participant, account, actor = market.holder("Jingneng")

    body = client_for(actor).get("/api/v1/").json()

    assert body["participant"]["id"] == participant.pk
    assert body["participant"]["status"] == "active"
    assert body["accounts"] == [account.number]
    assert body["links"]["docs"] == "/api/docs/"


def test_api_root_needs_authentication(market):
    response = client_for().get("/api/v1/")

    assert error_of(response) == (401, "not_authenticated")


def test_a_user_acting_for_no_participant_is_refused(market):
    client = Client()
    client.force_login(UserFactory())

    assert error_of(client.get("/api/v1/")) == (403, "no_membership")


def test_a_suspended_participant_reads_but_every_post_is_refused(market):
    participant, account, actor = market.holder("A")
    _, other_account, _ = market.holder("B")
    market.give(account, 100)
    client = client_for(actor)
    participant_suspend(actor=market.registry_actor, participant=participant, reason="unpaid fees")
    before = snapshot()

    reads = [
        client.get("/api/v1/"),
        client.get("/api/v1/accounts"),
        client.get(f"/api/v1/accounts/{account.number}/holdings"),
        client.get(f"/api/v1/accounts/{account.number}/statement"),
        client.get(f"/api/v1/accounts/{account.number}/statement?format=csv"),
        client.get("/api/v1/serials/CEA-2024/1"),
        client.get("/api/v1/retirements"),
    ]
    writes = [
        client.post(
            "/api/v1/transfers",
            {
                "source": account.number,
                "destination": other_account.number,
                "asset": "CEA-2024",
                "quantity": 1,
            },
            format="json",
        ),
        client.post(
            "/api/v1/retirements",
            {
                "account": account.number,
                "asset": "CEA-2024",
                "quantity": 1,
                "beneficiary": "b",
                "reason": "r",
            },
            format="json",
        ),
        client.post("/api/v1/accounts", {"name": "second"}, format="json"),
        client.post("/api/v1/projects", {}, format="json"),
        client.post("/api/v1/participants", {}, format="json"),
    ]

    assert [r.status_code for r in reads] == [200] * len(reads)
    assert reads[0].json()["participant"]["status"] == "suspended"
    assert [error_of(r) for r in writes] == [(403, "participant_suspended")] * len(writes)
    assert snapshot() == before


def test_registry_registers_a_participant(market):
    client = client_for(market.registry_actor)
    uscc = make_uscc("91110000MA0000088")

    response = client.post(
        "/api/v1/participants",
        {"name": "Capital Airport Energy", "kind": "compliance_entity", "uscc": uscc},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["uscc"] == uscc
    assert Participant.objects.get(uscc=uscc).accounts.count() == 1


def test_participant_with_a_wrong_check_character_is_400_invalid_uscc(market):
    client = client_for(market.registry_actor)
    uscc = make_uscc("91110000MA0000088")
    wrong = uscc[:17] + ("0" if uscc[17] != "0" else "1")
    before = Participant.objects.count()

    response = client.post(
        "/api/v1/participants",
        {"name": "Capital Airport Energy", "kind": "compliance_entity", "uscc": wrong},
        format="json",
    )

    assert error_of(response) == (400, "invalid_uscc")
    assert response.json()["error"]["details"] == {"uscc": wrong}
    assert Participant.objects.count() == before


def test_only_the_registry_registers_and_suspends(market):
    participant, _, actor = market.holder("A")
    client = client_for(actor)

    register = client.post(
        "/api/v1/participants",
        {"name": "X", "kind": "investor", "uscc": make_uscc("91110000MA0000066")},
        format="json",
    )
    suspend = client.post(f"/api/v1/participants/{participant.pk}/suspend", {"reason": "x"}, format="json")

    assert error_of(register) == (403, "wrong_participant_kind")
    assert error_of(suspend) == (403, "wrong_participant_kind")
    participant.refresh_from_db()
    assert participant.status == "active"


def test_participants_see_themselves_and_overseers_see_all(market):
    participant, _, actor = market.holder("A")
    other, _, _ = market.holder("B")
    client = client_for(actor)

    listed = client.get("/api/v1/participants").json()["results"]
    mine = client.get(f"/api/v1/participants/{participant.pk}")
    theirs = client.get(f"/api/v1/participants/{other.pk}")
    everyone = client_for(market.registry_actor).get("/api/v1/participants?page_size=100").json()["results"]

    assert [p["id"] for p in listed] == [participant.pk]
    assert mine.status_code == 200
    assert error_of(theirs) == (404, "participant_not_found")
    assert {p["id"] for p in everyone} == set(Participant.objects.values_list("pk", flat=True))


def test_registry_suspends_and_reactivates_over_the_api(market):
    participant, _, _ = market.holder("A")
    client = client_for(market.registry_actor)

    suspended = client.post(f"/api/v1/participants/{participant.pk}/suspend", {"reason": "audit"}, format="json")
    reactivated = client.post(f"/api/v1/participants/{participant.pk}/reactivate", {"reason": "ok"}, format="json")

    assert (suspended.json()["status"], reactivated.json()["status"]) == ("suspended", "active")
    participant.refresh_from_db()
    assert participant.status == "active"
