"""Four eyes: issuance and allocation above the threshold wait for a second registry user's approval."""

from __future__ import annotations

from datetime import date

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import ParticipantKind, Role
from core.errors import DomainError
from exchange.models import ApprovalOperation, ApprovalRequest, ApprovalStatus, Issuance
from exchange.services.approvals import approval_approve, approval_reject, gated
from exchange.services.issuance import AllocationRow, cea_allocate, project_register
from tests.factories import MembershipFactory
from tests.helpers.ledger import actor_for, balance, snapshot

pytestmark = pytest.mark.django_db

THRESHOLD = 100


@pytest.fixture(autouse=True)
def low_threshold():
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": THRESHOLD}):
        yield


def _allocation(market, account, quantity):
    rows = [AllocationRow(account=account, quantity=quantity)]
    return gated(
        actor=market.registry_actor,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={"asset": market.cea.code, "rows": [[account.number, quantity]], "idempotency_key": None, "memo": ""},
        summary=f"Allocate {quantity} t",
        call=lambda: cea_allocate(actor=market.registry_actor, asset=market.cea, rows=rows),
    )


def test_at_the_threshold_allocation_posts_at_once(market):
    _, account, _ = market.holder("Entity")
    result = _allocation(market, account, THRESHOLD)
    assert not isinstance(result, ApprovalRequest)
    assert balance(account, market.cea) == (THRESHOLD, 0)


def test_above_the_threshold_the_service_itself_refuses_and_changes_nothing(market):
    _, account, _ = market.holder("Entity")
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        cea_allocate(
            actor=market.registry_actor, asset=market.cea, rows=[AllocationRow(account=account, quantity=THRESHOLD + 1)]
        )
    assert refused.value.code == "approval_required"
    assert refused.value.details == {"quantity": THRESHOLD + 1, "threshold": THRESHOLD}
    assert snapshot() == before


def test_a_second_registry_user_approves_and_the_allocation_posts(market):
    _, account, _ = market.holder("Entity")
    request = _allocation(market, account, 500)
    assert isinstance(request, ApprovalRequest)
    assert request.status == ApprovalStatus.PENDING
    assert balance(account, market.cea) == (0, 0)

    approved = approval_approve(actor=actor_for(market.registry, Role.TRADER), approval=request)

    assert approved.status == ApprovalStatus.APPROVED
    assert approved.result.startswith("transaction:")
    assert balance(account, market.cea) == (500, 0)
    with pytest.raises(DomainError) as again:
        approval_approve(actor=actor_for(market.registry, Role.TRADER), approval=request)
    assert again.value.code == "approval_not_pending"
    assert balance(account, market.cea) == (500, 0)


def test_the_requester_cannot_approve_their_own_request(market):
    _, account, _ = market.holder("Entity")
    request = _allocation(market, account, 500)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        approval_approve(actor=market.registry_actor, approval=request)
    assert refused.value.code == "four_eyes_same_user"
    assert snapshot() == before
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


def test_only_the_registry_approves(market):
    _, account, entity_actor = market.holder("Entity")
    request = _allocation(market, account, 500)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        approval_approve(actor=entity_actor, approval=request)
    assert refused.value.code == "wrong_participant_kind"
    assert snapshot() == before
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalStatus.PENDING


def test_a_rejected_request_allocates_nothing(market):
    _, account, _ = market.holder("Entity")
    request = _allocation(market, account, 500)
    rejected = approval_reject(actor=actor_for(market.registry), approval=request, reason="quantity to be checked")
    assert (rejected.status, rejected.reason) == (ApprovalStatus.REJECTED, "quantity to be checked")
    assert balance(account, market.cea) == (0, 0)


def test_the_database_refuses_a_self_approval(market):
    _, account, _ = market.holder("Entity")
    request = _allocation(market, account, 500)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalRequest.objects.filter(pk=request.pk).update(status="approved", decided_by=request.requested_by)


def _client(participant):
    client = APIClient()
    client.force_authenticate(MembershipFactory(participant=participant, role=Role.ADMIN).user)
    return client


def test_issuance_over_http_waits_for_approval(market):
    _, owner_account, _ = market.holder("Forest owner", kind=ParticipantKind.PROJECT_OWNER)
    project_register(
        actor=market.registry_actor,
        code="P-1",
        name="Forest",
        project_type="forestry",
        methodology="M",
        location="L",
        owner=owner_account.participant,
        crediting_start=date(2020, 1, 1),
        crediting_end=date(2040, 1, 1),
    )
    requester, approver = _client(market.registry), _client(market.registry)
    body = {
        "vintage": 2023,
        "monitoring_start": "2021-01-01",
        "monitoring_end": "2021-12-31",
        "quantity": 5000,
        "external_reference": "ISS-1",
    }

    pending = requester.post("/api/v1/projects/P-1/issuances", body, format="json")

    assert pending.status_code == 202, pending.json()
    approval_id = pending.json()["approval"]["id"]
    assert Issuance.objects.count() == 0
    own = requester.post(f"/api/v1/approvals/{approval_id}/approve")
    assert (own.status_code, own.json()["error"]["code"]) == (403, "four_eyes_same_user")
    done = approver.post(f"/api/v1/approvals/{approval_id}/approve")
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == "approved"
    issuance = Issuance.objects.get()
    assert (issuance.quantity, issuance.external_reference) == (5000, "ISS-1")
    assert balance(owner_account, issuance.asset) == (5000, 0)
    assert issuance.project.owner_id == owner_account.participant_id


def test_allocation_csv_over_http_waits_for_approval(market):
    _, account, _ = market.holder("Entity")
    requester, approver = _client(market.registry), _client(market.registry)
    pending = requester.post(
        "/api/v1/allocations/csv?asset=CEA-2024", f"account,quantity\n{account.number},700\n", content_type="text/csv"
    )
    assert pending.status_code == 202, pending.json()
    assert approver.post(f"/api/v1/approvals/{pending.json()['approval']['id']}/approve").status_code == 200
    assert balance(account, market.cea) == (700, 0)
    listed = approver.get("/api/v1/approvals", {"status": "approved"}).json()["results"]
    assert [a["quantity"] for a in listed] == [700]


def test_an_allocation_over_the_threshold_files_one_request_per_key(market):
    _, account, _ = market.holder("Entity")
    requester, approver = _client(market.registry), _client(market.registry)

    def allocate(quantity):
        body = {"asset": "CEA-2024", "allocations": [{"account": account.number, "quantity": quantity}]}
        return requester.post("/api/v1/allocations", body, format="json", HTTP_IDEMPOTENCY_KEY="alloc-1")

    first, again = allocate(700), allocate(700)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ApprovalRequest.objects.count() == 1
    before = snapshot()
    other = allocate(701)
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert (snapshot(), ApprovalRequest.objects.count()) == (before, 1)

    assert approver.post(f"/api/v1/approvals/{first.json()['approval']['id']}/approve").status_code == 200
    after_approval = allocate(700)  # the key answers as the first time: the request it filed
    assert (after_approval.status_code, after_approval.json()) == (202, first.json())
    assert balance(account, market.cea) == (700, 0)
    assert ApprovalRequest.objects.count() == 1
