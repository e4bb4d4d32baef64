"""The four-eyes admin: approve and reject are actions on the request list, calling the services as the
logged-in user (a refusal is a message, never a change)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings

from accounts.models import Role
from exchange.models import ApprovalOperation, ApprovalRequest, ApprovalStatus
from exchange.services.approvals import gated
from exchange.services.issuance import AllocationRow, cea_allocate
from tests.helpers.api import admin_client_for
from tests.helpers.ledger import actor_for, balance

pytestmark = pytest.mark.django_db

THRESHOLD = 100
CHANGELIST = "/admin/exchange/approvalrequest/"


@pytest.fixture(autouse=True)
def low_threshold():
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": THRESHOLD}):
        yield


def staff(actor) -> Client:
    return admin_client_for(actor)


def pending_allocation(market, account, quantity: int) -> ApprovalRequest:
    rows = [AllocationRow(account=account, quantity=quantity)]
    request = gated(
        actor=market.registry_actor,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={"asset": market.cea.code, "rows": [[account.number, quantity]], "idempotency_key": None, "memo": ""},
        summary=f"Allocate {quantity} t",
        call=lambda: cea_allocate(actor=market.registry_actor, asset=market.cea, rows=rows),
    )
    assert isinstance(request, ApprovalRequest)
    return request


def test_the_list_offers_approve_and_reject(market):
    _, account, _ = market.holder("Entity")
    pending_allocation(market, account, 500)

    page = staff(actor_for(market.registry, Role.TRADER)).get(CHANGELIST)

    assert page.status_code == 200
    assert b'<option value="approve">' in page.content
    assert b'<option value="reject">' in page.content


def test_a_second_registry_user_approves_and_the_allocation_posts(market):
    _, account, _ = market.holder("Entity")
    request = pending_allocation(market, account, 500)

    staff(actor_for(market.registry, Role.TRADER)).post(
        CHANGELIST, {"action": "approve", "_selected_action": [request.pk]}
    )

    request.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED
    assert balance(account, market.cea) == (500, 0)


def test_the_requester_is_refused_and_nothing_changes(market):
    _, account, _ = market.holder("Entity")
    request = pending_allocation(market, account, 500)

    refused = staff(market.registry_actor).post(
        CHANGELIST, {"action": "approve", "_selected_action": [request.pk]}, follow=True
    )

    assert b"four_eyes_same_user" in refused.content
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING
    assert balance(account, market.cea) == (0, 0)


def test_a_rejected_request_allocates_nothing(market):
    _, account, _ = market.holder("Entity")
    request = pending_allocation(market, account, 500)

    staff(actor_for(market.registry, Role.TRADER)).post(
        CHANGELIST, {"action": "reject", "_selected_action": [request.pk]}
    )

    request.refresh_from_db()
    assert (request.status, request.reason) == (ApprovalStatus.REJECTED, "rejected in admin")
    assert balance(account, market.cea) == (0, 0)
