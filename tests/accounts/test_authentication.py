"""API tokens: stored as a digest, shown once, refused when revoked, expired, wrong or malformed."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import ApiToken
from accounts.services import api_token_create, api_token_revoke
from core.errors import DomainError
from tests.factories import UserFactory
from tests.helpers.api import client_for, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader(market):
    participant, _, actor = market.holder("Jingneng")
    return participant, actor


def _user(actor):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=actor.user_id)


def test_token_is_stored_only_as_its_digest(trader):
    _, actor = trader

    token, text = api_token_create(actor=actor, user=_user(actor), name="trading bot")

    assert text.startswith(f"gl_{token.prefix}_")
    assert len(text) > 40
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert stored["digest"] == hashlib.sha256(text.encode()).hexdigest()
    assert not any(text in str(value) for value in stored.values())
    assert text.split("_", 2)[2] not in str(stored)


def test_token_authenticates_and_records_its_use(trader):
    participant, actor = trader
    token, text = api_token_create(actor=actor, user=_user(actor), name="bot")

    response = client_for(token=text).get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert (body["user"], body["role"], body["participant"]["id"]) == (
        _user(actor).username,
        "admin",
        participant.pk,
    )
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_bearer_keyword_works_too(trader):
    _, actor = trader
    _, text = api_token_create(actor=actor, user=_user(actor), name="bot")
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")

    assert client.get("/api/v1/").status_code == 200


@pytest.mark.parametrize("case", ["revoked", "expired", "wrong_secret", "unknown_prefix", "malformed", "inactive_user"])
def test_bad_tokens_are_refused(trader, case):
    _, actor = trader
    user = _user(actor)
    expires_at = timezone.now() - timedelta(seconds=1) if case == "expired" else None
    token, text = api_token_create(actor=actor, user=user, name="bot", expires_at=expires_at)
    if case == "revoked":
        api_token_revoke(actor=actor, token=token)
    elif case == "wrong_secret":
        text = text[:-1] + ("A" if text[-1] != "A" else "B")
    elif case == "unknown_prefix":
        text = "gl_000000000000_" + text.split("_", 2)[2]
    elif case == "malformed":
        text = "not-a-token"
    elif case == "inactive_user":
        user.is_active = False
        user.save()

    response = client_for(token=text).get("/api/v1/")

    assert error_of(response) == (401, "authentication_failed")


def test_token_that_has_not_expired_yet_works(trader):
    _, actor = trader
    _, text = api_token_create(
        actor=actor, user=_user(actor), name="bot", expires_at=timezone.now() + timedelta(days=1)
    )

    assert client_for(token=text).get("/api/v1/").status_code == 200


def test_only_the_user_or_their_admin_creates_tokens(market, trader):
    _, actor = trader
    _, _, other = market.holder("Other")
    before = ApiToken.objects.count()

    with pytest.raises(DomainError) as refused:
        api_token_create(actor=other, user=_user(actor), name="stolen")

    assert refused.value.code == "role_forbidden"
    assert ApiToken.objects.count() == before


def test_create_token_command_prints_a_working_token_once(trader):
    _, actor = trader
    user = _user(actor)
    out, err = io.StringIO(), io.StringIO()

    call_command("create_token", user.username, "--name", "desk", "--expires-days", "30", stdout=out, stderr=err)

    text = out.getvalue().strip()
    assert len(out.getvalue().strip().splitlines()) == 1
    token = ApiToken.objects.get(user=user, name="desk")
    assert text.startswith(f"gl_{token.prefix}_")
    assert "not shown again" in err.getvalue()
    assert text not in err.getvalue()
    assert token.digest == hashlib.sha256(text.encode()).hexdigest()
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert client_for(token=text).get("/api/v1/").status_code == 200


def test_create_token_command_refuses_unknown_users_and_users_without_membership():
    lonely = UserFactory()

    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match=r"\(invalid\)"):
        call_command("create_token", lonely.username, stdout=io.StringIO(), stderr=io.StringIO())
    assert ApiToken.objects.count() == 0


def test_system_actor_creates_tokens_for_anyone(trader):
    _, actor = trader

    token, _ = api_token_create(actor=Actor.system("ops"), user=_user(actor), name="ops")

    assert token.user_id == actor.user_id
