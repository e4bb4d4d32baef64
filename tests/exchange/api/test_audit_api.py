"""The audit trail over the API: who may read it, proofs that verify with the standalone checker."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ParticipantKind
from exchange.audit_proof import ProofError, verify_proof
from exchange.models import AuditEvent
from exchange.services.retirement import retirement_create
from exchange.services.sealing import audit_seal
from tests.factories import MembershipFactory, ParticipantFactory
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


def client_for(participant) -> APIClient:
    membership = MembershipFactory(participant=participant)
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


@pytest.fixture
def world():
    market = make_market()
    entity, acc, actor = market.holder("Shougang")
    market.give(acc, 500)
    retirement = retirement_create(
        actor=actor, account=acc, asset=market.cea, quantity=20, beneficiary="Winter Games 2026", reason="offset"
    )
    auditor = ParticipantFactory(kind=ParticipantKind.AUDITOR)
    return market, entity, acc, retirement, auditor


def test_auditor_reads_and_filters_events(world):
    _, entity, _, retirement, auditor = world
    client = client_for(auditor)

    response = client.get("/api/v1/audit/events", {"action": "retirement.create"})

    assert response.status_code == 200
    (event,) = response.json()["results"]
    assert event["object_id"] == str(retirement.transaction_id)
    assert event["actor_participant"] == entity.pk
    assert event["payload"]["quantity"] == "20"


def test_auditor_changes_nothing(world):
    *_, auditor = world
    response = client_for(auditor).post("/api/v1/audit/seal")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "wrong_participant_kind"


def test_entity_may_not_read_the_events_list_or_verify(world):
    _, entity, *_ = world
    client = client_for(entity)
    for path in ("/api/v1/audit/events", "/api/v1/audit/verify"):
        response = client.get(path)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "wrong_participant_kind"


def test_proof_from_the_api_verifies_and_a_changed_event_fails(world):
    _, entity, _, _, auditor = world
    audit_seal()
    seq = AuditEvent.objects.get(action="retirement.create").seq

    proof = client_for(entity).get(f"/api/v1/audit/events/{seq}/proof").json()

    assert verify_proof(proof)["seq"] == seq
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE exchange_auditevent SET payload = replace(payload, '\"20\"', '\"2000\"') WHERE seq = %s", [seq]
        )
    changed = client_for(auditor).get(f"/api/v1/audit/events/{seq}/proof").json()
    with pytest.raises(ProofError, match="does not match its body"):
        verify_proof(changed)
    verification = client_for(auditor).get("/api/v1/audit/verify", HTTP_ACCEPT_LANGUAGE="en").json()
    assert verification["ok"] is False
    assert verification["first_mismatch"]["seq"] == seq
    assert verification["first_mismatch"]["code"] == "event_hash"
    assert verification["first_mismatch"]["reason"] == "hash does not match its contents"
    in_chinese = client_for(auditor).get("/api/v1/audit/verify", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert in_chinese["first_mismatch"]["code"] == "event_hash"
    assert in_chinese["first_mismatch"]["reason"] == "哈希与其内容不符"


def test_unsealed_event_has_no_proof_yet(world):
    _, entity, *_ = world
    seq = AuditEvent.objects.get(action="retirement.create").seq
    response = client_for(entity).get(f"/api/v1/audit/events/{seq}/proof")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_sealed"


def test_another_participants_event_proof_is_not_found(world):
    other = ParticipantFactory()
    audit_seal()
    seq = AuditEvent.objects.get(action="retirement.create").seq
    response = client_for(other).get(f"/api/v1/audit/events/{seq}/proof")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "event_not_found"


def test_retirement_transaction_page_carries_its_proof_once_sealed(world):
    _, entity, _, retirement, _ = world
    client = client_for(entity)
    before = client.get(f"/api/v1/transactions/{retirement.transaction_id}").json()
    assert before["audit"]["sealed"] is False
    assert before["audit"]["proof"] is None

    audit_seal()
    after = client.get(f"/api/v1/transactions/{retirement.transaction_id}").json()

    assert after["audit"]["sealed"] is True
    assert verify_proof(after["audit"]["proof"])["seq"] == after["audit"]["event"]


def test_verify_endpoint_reports_an_intact_trail(world):
    *_, auditor = world
    audit_seal()
    body = client_for(auditor).get("/api/v1/audit/verify").json()
    assert body["ok"] is True
    assert body["events"] == AuditEvent.objects.count()
    assert body["first_mismatch"] is None
