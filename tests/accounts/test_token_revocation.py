"""A leaked token is stopped by the registry: its admins revoke any participant's token in the admin, through
the API and with ``manage.py revoke_token``; each revocation is audited and the token stops working at once.
Other participants can't touch (or even see) tokens that aren't theirs to manage."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.actors import Actor
from accounts.models import ApiToken, Role
from accounts.services import api_token_create
from exchange.models import AuditEvent
from tests.factories import MembershipFactory
from tests.helpers.api import admin_client_for, client_for, error_of

pytestmark = pytest.mark.django_db


def leaked_token(market) -> tuple[ApiToken, str]:
    participant, _, _ = market.holder("Entity")
    user = MembershipFactory(participant=participant, role=Role.TRADER).user
    return api_token_create(actor=Actor.system("test"), user=user, name="leaked")


def works(text: str) -> bool:
    return client_for(token=text).get("/api/v1/").status_code == 200


def revocations(token: ApiToken) -> list[dict]:
    return [
        e.payload_json
        for e in AuditEvent.objects.filter(action="api_token.revoke", object_id=str(token.pk)).order_by("seq")
    ]


def test_the_registry_admin_revokes_another_participants_token_in_the_admin(market):
    token, text = leaked_token(market)
    assert works(text)
    client = admin_client_for(market.registry_actor)

    response = client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "role_forbidden" not in response.content.decode()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert not works(text)
    assert [p["prefix"] for p in revocations(token)] == [token.prefix]


def test_the_registry_admin_revokes_a_token_through_the_api(market):
    token, text = leaked_token(market)
    response = client_for(market.registry_actor).post(
        f"/api/v1/tokens/{token.prefix}/revoke", {"reason": "leaked in a log"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["prefix"] == token.prefix
    assert response.json()["revoked_at"] is not None
    assert not works(text)
    [payload] = revocations(token)
    assert payload["reason"] == "leaked in a log"
    assert payload["already_revoked"] is False
    event = AuditEvent.objects.get(action="api_token.revoke", object_id=str(token.pk))
    assert event.actor_participant_id == market.registry.pk


def test_a_user_revokes_its_own_token_and_an_admin_its_members(market):
    token, text = leaked_token(market)
    participant = token.user.membership.participant
    own_admin = Actor.for_user(
        MembershipFactory(participant=participant, role=Role.ADMIN).user
    )
    assert client_for(own_admin).post(f"/api/v1/tokens/{token.prefix}/revoke", {}, format="json").status_code == 200
    assert not works(text)
    other, other_text = api_token_create(actor=Actor.system("test"), user=token.user, name="second")
    assert (
        client_for(token=other_text).post(f"/api/v1/tokens/{other.prefix}/revoke", {}, format="json").status_code == 200
    )
    assert not works(other_text)


@pytest.mark.parametrize("role", [Role.TRADER, Role.VIEWER])
def test_registry_non_admins_cant_revoke_others_tokens(market, role):
    token, text = leaked_token(market)
    registry_user = MembershipFactory(participant=market.registry, role=role).user
    response = client_for(Actor.for_user(registry_user)).post(
        f"/api/v1/tokens/{token.prefix}/revoke", {}, format="json"
    )
    assert error_of(response) == (403, "role_forbidden")
    assert works(text)
    assert revocations(token) == []


def test_another_participant_cant_see_or_revoke_a_token(market):
    token, text = leaked_token(market)
    _, _, stranger = market.holder("Stranger")
    response = client_for(stranger).post(f"/api/v1/tokens/{token.prefix}/revoke", {}, format="json")
    assert error_of(response) == (404, "token_not_found")
    assert error_of(client_for(stranger).post("/api/v1/tokens/nosuch/revoke", {}, format="json")) == (
        404,
        "token_not_found",
    )
    assert works(text)
    assert revocations(token) == []


def test_revoke_token_command(market):
    token, text = leaked_token(market)
    out = io.StringIO()
    call_command("revoke_token", text, "--reason", "leaked", stdout=out)
    assert f"Token {token.prefix}" in out.getvalue()
    assert not works(text)
    assert revocations(token)[0]["reason"] == "leaked"
    with pytest.raises(CommandError, match="No API token"):
        call_command("revoke_token", "nosuchprefix")
