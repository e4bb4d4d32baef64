"""Retirement for offsetting and the registry's cancellations: units leave circulation for good."""

from __future__ import annotations

import pytest

from accounts.models import ParticipantKind, Role
from accounts.services import participant_suspend
from core.errors import DomainError
from exchange.models import AccountKind, AuditEvent, HoldKind, Retirement
from exchange.services.ledger import hold_place
from exchange.services.retirement import retirement_create, units_cancel
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, make_market, snapshot, system

pytestmark = pytest.mark.django_db


def _state() -> dict[str, object]:
    return snapshot() | {"retirements": Retirement.objects.count()}


def test_retire_sends_lowest_serials_to_the_sink_with_beneficiary_and_reason(market):
    _, a_acc, a = market.holder("Shougang Steel")
    market.give(a_acc, 100)

    retirement = retirement_create(
        actor=a,
        account=a_acc,
        asset=market.cea,
        quantity=30,
        beneficiary="  Beijing Marathon 2025 ",
        reason="Offsetting the event's emissions",
    )

    sink = system(AccountKind.RETIREMENT)
    assert balance(a_acc, market.cea) == (70, 0)
    assert balance(sink, market.cea) == (30, 0)
    assert blocks(market.cea) == [(1, 30, sink.number, "retired"), (31, 100, a_acc.number, "available")]
    retirement.refresh_from_db()
    assert (retirement.account_id, retirement.quantity, retirement.beneficiary, retirement.reason) == (
        a_acc.pk,
        30,
        "Beijing Marathon 2025",
        "Offsetting the event's emissions",
    )
    assert retirement.transaction.kind == "retirement"
    assert retirement.transaction.metadata == {
        "beneficiary": "Beijing Marathon 2025",
        "reason": "Offsetting the event's emissions",
    }
    assert list(retirement.transaction.serial_movements.values_list("first", "last", "state")) == [
        (1, 30, "retired")
    ]
    assert AuditEvent.objects.filter(action="retirement.create").count() == 1
    assert_reconciled()


def test_retire_named_serials_and_they_never_move_again(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)

    retirement_create(
        actor=a, account=a_acc, asset=market.cea, quantity=10, beneficiary="B", reason="R", serials=(51, 60)
    )
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=90)

    sink = system(AccountKind.RETIREMENT)
    assert blocks(market.cea) == [
        (1, 50, b_acc.number, "available"),
        (51, 60, sink.number, "retired"),
        (61, 100, b_acc.number, "available"),
    ]
    assert balance(a_acc, market.cea) == (0, 0)
    assert_reconciled()


def test_retirement_idempotency_key_replays(market):
    _, a_acc, a = market.holder("A")
    market.give(a_acc, 100)
    kwargs = {"actor": a, "account": a_acc, "asset": market.cea, "beneficiary": "B", "reason": "R"}
    first = retirement_create(quantity=10, idempotency_key="r-1", **kwargs)
    before = _state()

    again = retirement_create(quantity=10, idempotency_key="r-1", **kwargs)

    assert again.pk == first.pk
    assert _state() == before
    with pytest.raises(DomainError) as refused:
        retirement_create(quantity=11, idempotency_key="r-1", **kwargs)
    assert refused.value.code == "idempotency_conflict"
    assert _state() == before


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("insufficient", "insufficient_available"),
        ("held", "insufficient_available"),
        ("no_beneficiary", "invalid"),
        ("no_reason", "invalid"),
        ("not_yours", "account_not_found"),
        ("suspended", "participant_suspended"),
        ("viewer", "role_forbidden"),
        ("auditor", "wrong_participant_kind"),
        ("serials_elsewhere", "serials_not_available"),
    ],
)
def test_retirement_refusals_change_nothing(market, case, code):
    a, a_acc, a_actor = market.holder("A")
    _, b_acc, b_actor = market.holder("B")
    market.give(a_acc, 50)
    market.give(b_acc, 50)
    kwargs = {
        "actor": a_actor,
        "account": a_acc,
        "asset": market.cea,
        "quantity": 10,
        "beneficiary": "Someone",
        "reason": "Offsetting",
    }
    if case == "insufficient":
        kwargs["quantity"] = 51
    elif case == "held":
        hold_place(account=a_acc, asset=market.cea, quantity=45, kind=HoldKind.PLEDGE, reference="pledge:1")
    elif case == "no_beneficiary":
        kwargs["beneficiary"] = "   "
    elif case == "no_reason":
        kwargs["reason"] = ""
    elif case == "not_yours":
        kwargs["actor"] = b_actor
    elif case == "suspended":
        participant_suspend(actor=market.registry_actor, participant=a, reason="test")
        kwargs["actor"] = type(a_actor).for_user(a.memberships.first().user)
    elif case == "viewer":
        kwargs["actor"] = actor_for(a, role=Role.VIEWER)
    elif case == "auditor":
        _, kwargs["account"], kwargs["actor"] = market.holder("Auditor", kind=ParticipantKind.AUDITOR)
    elif case == "serials_elsewhere":
        kwargs["serials"] = (51, 60)
    before = _state()

    with pytest.raises(DomainError) as refused:
        retirement_create(**kwargs)

    assert refused.value.code == code
    assert _state() == before


# --- cancellation --------------------------------------------------------------------------------------
def test_registry_cancels_units_of_any_holding_account(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)

    txn = units_cancel(
        actor=market.registry_actor,
        account=a_acc,
        asset=market.cea,
        quantity=20,
        reason="Over-allocation, ruling 7",
    )

    sink = system(AccountKind.CANCELLATION)
    assert txn.kind == "cancellation"
    assert txn.memo == "Over-allocation, ruling 7"
    assert balance(a_acc, market.cea) == (80, 0)
    assert balance(sink, market.cea) == (20, 0)
    assert blocks(market.cea) == [(1, 20, sink.number, "cancelled"), (21, 100, a_acc.number, "available")]
    assert AuditEvent.objects.filter(action="units.cancel", object_id=str(txn.pk)).count() == 1
    assert_reconciled()


def test_cancel_named_serials(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)

    units_cancel(
        actor=market.registry_actor,
        account=a_acc,
        asset=market.cea,
        quantity=5,
        reason="R",
        serials=(96, 100),
    )

    assert blocks(market.cea) == [
        (1, 95, a_acc.number, "available"),
        (96, 100, system(AccountKind.CANCELLATION).number, "cancelled"),
    ]
    assert_reconciled()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("not_registry", "wrong_participant_kind"),
        ("no_reason", "invalid"),
        ("insufficient", "insufficient_available"),
        ("system_account", "account_not_found"),
    ],
)
def test_cancellation_refusals_change_nothing(market, case, code):
    _, a_acc, a_actor = market.holder("A")
    market.give(a_acc, 50)
    kwargs = {
        "actor": market.registry_actor,
        "account": a_acc,
        "asset": market.cea,
        "quantity": 10,
        "reason": "R",
    }
    if case == "not_registry":
        kwargs["actor"] = a_actor
    elif case == "no_reason":
        kwargs["reason"] = "  "
    elif case == "insufficient":
        kwargs["quantity"] = 51
    elif case == "system_account":
        kwargs["account"] = system(AccountKind.ISSUANCE)
    before = _state()

    with pytest.raises(DomainError) as refused:
        units_cancel(**kwargs)

    assert refused.value.code == code
    assert _state() == before


def test_a_refused_first_retirement_leaves_no_ghost_sink_account(market):
    # The first retirement ever creates the retirement sink; when it is refused, that creation rolls
    # back with it, and the next retirement must not post to the account that never was.
    _, a_acc, a = market.holder("A")
    market.give(a_acc, 100)
    kwargs = {"actor": a, "account": a_acc, "asset": market.cea, "beneficiary": "B", "reason": "R"}
    with pytest.raises(DomainError):
        retirement_create(quantity=101, **kwargs)

    retirement_create(quantity=10, **kwargs)

    sink = system(AccountKind.RETIREMENT)
    assert blocks(market.cea) == [(1, 10, sink.number, "retired"), (11, 100, a_acc.number, "available")]
    assert balance(sink, market.cea) == (10, 0)
    assert_reconciled()


@pytest.mark.django_db(transaction=True)
def test_a_refused_first_cancellation_leaves_no_ghost_sink_account_after_commit():
    market = make_market()
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)
    kwargs = {"actor": market.registry_actor, "account": a_acc, "asset": market.cea, "reason": "R"}
    with pytest.raises(DomainError):
        units_cancel(quantity=101, **kwargs)

    units_cancel(quantity=10, **kwargs)

    assert balance(system(AccountKind.CANCELLATION), market.cea) == (10, 0)
    assert_reconciled()
