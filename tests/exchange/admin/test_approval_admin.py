"""The four-eyes admin: approve and reject are actions on the request list, calling the services as the
logged-in user (a refusal is a message, never a change)."""

from __future__ import annotations

import re

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


def labels(page) -> list[str]:
    return re.findall(r"<label>(.*?)</label>", page.content.decode())


def test_who_requested_reads_as_a_link_only_to_whom_the_user_page_opens(market):
    """A registry officer's desk (staff, not superuser) can't open the user admin (a 403): the requester's
    name is text there; a superuser's page links it."""
    from django.contrib.auth import get_user_model

    from exchange.management.commands.seed_demo import demo_desk

    _, account, _ = market.holder("Entity")
    request = pending_allocation(market, account, 500)
    requester = get_user_model().objects.get(pk=market.registry_actor.user_id)
    officer = get_user_model().objects.get(pk=actor_for(market.registry, Role.TRADER).user_id)
    officer.is_staff = True
    officer.save()
    officer.groups.add(demo_desk("registry"))
    desk = Client()
    desk.force_login(officer)
    user_page = f"/admin/auth/user/{requester.pk}/change/"

    page = desk.get(f"/admin/exchange/approvalrequest/{request.pk}/change/")
    superuser_page = staff(actor_for(market.registry, Role.ADMIN)).get(
        f"/admin/exchange/approvalrequest/{request.pk}/change/"
    )

    assert desk.get(user_page).status_code == 403
    assert page.status_code == 200
    assert user_page not in page.content.decode()
    assert f'<div class="readonly">{requester.username}</div>' in page.content.decode()
    assert len(labels(page)) > 3
    assert labels(page) == labels(superuser_page)  # the same rows, named alike
    assert f'<a href="{user_page}">{requester.username}</a>' in superuser_page.content.decode()
