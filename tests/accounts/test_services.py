"""Participants, memberships and their refusals: each change records an audit event, each refusal none."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from accounts.models import Membership, Participant, Role
from accounts.services import (
    membership_create,
    membership_set_role,
    participant_create,
    participant_reactivate,
    participant_suspend,
)
from accounts.validators import make_uscc
from core.errors import DomainError
from exchange.models import Account, AuditEvent
from tests.factories import ParticipantFactory, UserFactory
from tests.helpers.ledger import snapshot

pytestmark = pytest.mark.django_db

USCC = make_uscc("91110000MA0000099")


def _state() -> dict[str, object]:
    return snapshot() | {
        "participants": Participant.objects.count(),
        "accounts": Account.objects.count(),
        "memberships": Membership.objects.count(),
    }


def test_register_participant_opens_its_first_account(market):
    participant = participant_create(
        actor=market.registry_actor,
        name=" Jingneng Thermal Power ",
        kind="compliance_entity",
        uscc=USCC.lower(),
    )

    assert (participant.name, participant.kind, participant.uscc, participant.status) == (
        "Jingneng Thermal Power",
        "compliance_entity",
        USCC,
        "active",
    )
    account = Account.objects.get(participant=participant)
    assert (account.kind, account.number) == ("holding", f"CN-100-{account.pk:06d}")
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))[-2:] == [
        "participant.create",
        "account.open",
    ]


def test_overseers_get_no_holding_account(market):
    participant = participant_create(actor=market.registry_actor, name="Auditor", kind="auditor", uscc=USCC)

    assert not Account.objects.filter(participant=participant).exists()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_check_character", "invalid_uscc"),
        ("short", "invalid_uscc"),
        ("duplicate", "duplicate_participant"),
        ("unknown_kind", "invalid"),
        ("no_name", "invalid"),
        ("not_registry", "wrong_participant_kind"),
    ],
)
def test_participant_refusals_change_nothing(market, case, code):
    _, _, holder = market.holder("A")
    ParticipantFactory(uscc=make_uscc("91110000MA0000077"))
    kwargs = {"actor": market.registry_actor, "name": "New Co", "kind": "investor", "uscc": USCC}
    if case == "wrong_check_character":
        kwargs["uscc"] = USCC[:17] + ("0" if USCC[17] != "0" else "1")
    elif case == "short":
        kwargs["uscc"] = USCC[:17]
    elif case == "duplicate":
        kwargs["uscc"] = make_uscc("91110000MA0000077")
    elif case == "unknown_kind":
        kwargs["kind"] = "hedge_fund"
    elif case == "no_name":
        kwargs["name"] = "  "
    elif case == "not_registry":
        kwargs["actor"] = holder
    before = _state()

    with pytest.raises(DomainError) as refused:
        participant_create(**kwargs)

    assert refused.value.code == code
    assert _state() == before


def test_suspend_and_reactivate(market):
    participant, _, _ = market.holder("A")

    participant_suspend(actor=market.registry_actor, participant=participant, reason="unpaid fees")
    participant.refresh_from_db()
    suspended = participant.status
    participant_reactivate(actor=market.registry_actor, participant=participant, reason="paid")
    participant.refresh_from_db()

    assert (suspended, participant.status) == ("suspended", "active")
    events = AuditEvent.objects.filter(object_type="participant", object_id=str(participant.pk))
    assert list(events.order_by("seq").values_list("action", flat=True)) == [
        "participant.suspend",
        "participant.reactivate",
    ]


def test_suspension_refusals(market):
    participant, _, holder = market.holder("A")
    before = _state()

    with pytest.raises(DomainError) as not_registry:
        participant_suspend(actor=holder, participant=participant, reason="x")
    with pytest.raises(DomainError) as itself:
        participant_suspend(actor=market.registry_actor, participant=market.registry, reason="x")

    assert (not_registry.value.code, itself.value.code) == (
        "wrong_participant_kind",
        "wrong_participant_kind",
    )
    assert _state() == before


def test_memberships_by_registry_and_by_a_participants_admin(market):
    participant, _, admin = market.holder("A")
    other, _, _ = market.holder("B")
    trader_user, stranger_user = UserFactory(), UserFactory()

    membership = membership_create(actor=admin, user=trader_user, participant=participant, role=Role.TRADER)
    membership_set_role(actor=admin, membership=membership, role=Role.VIEWER)

    membership.refresh_from_db()
    assert (membership.participant_id, membership.role) == (participant.pk, Role.VIEWER)
    assert Actor.for_user(trader_user).role == Role.VIEWER
    before = _state()
    with pytest.raises(DomainError) as not_theirs:
        membership_create(actor=admin, user=stranger_user, participant=other, role=Role.TRADER)
    with pytest.raises(DomainError) as twice:
        membership_create(actor=market.registry_actor, user=trader_user, participant=other, role=Role.TRADER)
    with pytest.raises(DomainError) as viewer_acts:
        membership_create(
            actor=Actor.for_user(trader_user), user=stranger_user, participant=participant, role=Role.TRADER
        )
    assert (not_theirs.value.code, twice.value.code, viewer_acts.value.code) == (
        "not_found",
        "invalid",
        "role_forbidden",
    )
    assert _state() == before


def test_a_user_without_membership_is_no_actor():
    user = UserFactory()

    with pytest.raises(DomainError) as refused:
        Actor.for_user(user)

    assert refused.value.code == "no_membership"
