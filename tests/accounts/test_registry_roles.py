"""The registry's people pass the same role checks as everyone's inside the services: a registry viewer
can't promote itself, make memberships or open accounts, whichever door (API, admin, command) calls."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from accounts.models import Membership, Role
from accounts.services import membership_create, membership_set_role
from core.errors import DomainError
from exchange.models import Account, AuditEvent
from exchange.services.accounts import account_open
from tests.factories import MembershipFactory, UserFactory
from tests.helpers.api import admin_client_for

pytestmark = pytest.mark.django_db


def registry_member(market, role: str) -> tuple[Actor, Membership]:
    membership = MembershipFactory(participant=market.registry, role=role)
    return Actor.for_user(membership.user), membership


def state():
    return (
        list(Membership.objects.order_by("pk").values_list("pk", "role")),
        Account.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.TRADER])
def test_a_registry_non_admin_cant_change_its_own_role(market, role):
    actor, membership = registry_member(market, role)
    before = state()
    with pytest.raises(DomainError) as refused:
        membership_set_role(actor=actor, membership=membership, role=Role.ADMIN)
    assert refused.value.code == "role_forbidden"
    assert state() == before


@pytest.mark.parametrize("role", [Role.VIEWER, Role.TRADER])
def test_a_registry_non_admin_cant_make_memberships(market, role):
    actor, _ = registry_member(market, role)
    before = state()
    with pytest.raises(DomainError) as refused:
        membership_create(actor=actor, user=UserFactory(), participant=market.registry, role=Role.ADMIN)
    assert refused.value.code == "role_forbidden"
    assert state() == before


def test_a_registry_viewer_cant_open_accounts(market):
    actor, _ = registry_member(market, Role.VIEWER)
    participant, _, _ = market.holder("Entity")
    before = state()
    with pytest.raises(DomainError) as refused:
        account_open(actor=actor, participant=participant, name="x")
    assert refused.value.code == "role_forbidden"
    assert state() == before


def test_registry_admins_still_manage_memberships_and_traders_open_accounts(market):
    admin, _ = registry_member(market, Role.ADMIN)
    trader, trader_membership = registry_member(market, Role.TRADER)
    participant, _, _ = market.holder("Entity")

    created = membership_create(actor=admin, user=UserFactory(), participant=participant, role=Role.TRADER)
    membership_set_role(actor=admin, membership=trader_membership, role=Role.VIEWER)
    account = account_open(actor=trader, participant=participant, name="second")

    assert created.role == Role.TRADER
    assert Membership.objects.get(pk=trader_membership.pk).role == Role.VIEWER
    assert account.participant_id == participant.pk


def test_a_registry_viewer_promoting_itself_in_the_admin_is_refused(market):
    actor, membership = registry_member(market, Role.VIEWER)
    client = admin_client_for(actor)  # staff and superuser: Django's permissions let it through to the service
    response = client.post(f"/admin/accounts/membership/{membership.pk}/change/", {"role": Role.ADMIN}, follow=True)
    assert response.status_code == 200
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER
    assert "role_forbidden" in response.content.decode()
