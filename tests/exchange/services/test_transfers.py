"""Transfers: balances and serial blocks after, every refusal with its code and nothing changed."""

from __future__ import annotations

import pytest

from accounts.models import ParticipantKind, Role
from accounts.services import participant_suspend
from core.errors import DomainError
from exchange.models import AccountKind, AuditEvent, Transaction
from exchange.services.accounts import system_account
from exchange.services.issuance import cea_vintage_create
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, snapshot

pytestmark = pytest.mark.django_db


def test_transfer_moves_lowest_serials_and_balances(market):
    _, a_acc, a = market.holder("Shougang Steel")
    _, b_acc, _ = market.holder("Huaneng Power")
    market.give(a_acc, 100)

    txn = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=30)

    assert balance(a_acc, market.cea) == (70, 0)
    assert balance(b_acc, market.cea) == (30, 0)
    assert blocks(market.cea) == [
        (1, 30, b_acc.number, "available"),
        (31, 100, a_acc.number, "available"),
    ]
    assert sorted(txn.postings.values_list("quantity", "balance_after")) == [(-30, 70), (30, 30)]
    assert AuditEvent.objects.filter(action="transfer.create", object_id=str(txn.pk)).count() == 1
    assert_reconciled()


def test_three_partial_transfers_partition_the_block_and_lookup_names_holder(market):
    _, a_acc, a = market.holder("A")
    accounts = [market.holder(name)[1] for name in ("B", "C", "D")]
    market.give(a_acc, 100)

    for account, quantity in zip(accounts, (10, 25, 40), strict=True):
        transfer_create(actor=a, source=a_acc, destination=account, asset=market.cea, quantity=quantity)

    assert blocks(market.cea) == [
        (1, 10, accounts[0].number, "available"),
        (11, 35, accounts[1].number, "available"),
        (36, 75, accounts[2].number, "available"),
        (76, 100, a_acc.number, "available"),
    ]
    assert_reconciled()


def test_units_coming_back_merge_with_adjacent_block(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, b = market.holder("B")
    market.give(a_acc, 100)
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=40)

    transfer_create(actor=b, source=b_acc, destination=a_acc, asset=market.cea, quantity=40)

    assert blocks(market.cea) == [(1, 100, a_acc.number, "available")]
    assert_reconciled()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("insufficient", "insufficient_available"),
        ("same_account", "same_account"),
        ("not_yours", "account_not_found"),
        ("suspended", "participant_suspended"),
        ("viewer", "role_forbidden"),
        ("registry_kind", "account_not_found"),
    ],
)
def test_refusals_change_nothing(market, case, code):
    a, a_acc, a_actor = market.holder("A")
    _, b_acc, b_actor = market.holder("B")
    market.give(a_acc, 50)
    actor, source, destination, quantity = a_actor, a_acc, b_acc, 10
    if case == "insufficient":
        quantity = 51
    elif case == "same_account":
        destination = a_acc
    elif case == "not_yours":
        actor = b_actor
    elif case == "suspended":
        participant_suspend(actor=market.registry_actor, participant=a, reason="test")
        actor = type(a_actor).for_user(a.memberships.first().user)
    elif case == "viewer":
        actor = actor_for(a, role=Role.VIEWER)
    elif case == "registry_kind":
        actor = market.registry_actor
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        transfer_create(
            actor=actor, source=source, destination=destination, asset=market.cea, quantity=quantity
        )

    assert refused.value.code == code
    assert snapshot() == before


def test_idempotency_key_replays_and_conflicts(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)

    first = transfer_create(
        actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=5, idempotency_key="k1"
    )
    again = transfer_create(
        actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=5, idempotency_key="k1"
    )

    assert again.pk == first.pk
    assert balance(a_acc, market.cea) == (95, 0)
    with pytest.raises(DomainError) as refused:
        transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=6, idempotency_key="k1"
        )
    assert refused.value.code == "idempotency_conflict"
    assert Transaction.objects.filter(kind="transfer").count() == 1


def test_participant_kind_constant_exists():
    assert ParticipantKind.REGISTRY == "registry"


def test_explicit_serial_range_cuts_the_middle_of_a_block(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)

    txn = transfer_create(
        actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=20, serials=(41, 60)
    )

    assert blocks(market.cea) == [
        (1, 40, a_acc.number, "available"),
        (41, 60, b_acc.number, "available"),
        (61, 100, a_acc.number, "available"),
    ]
    assert balance(a_acc, market.cea) == (80, 0)
    assert balance(b_acc, market.cea) == (20, 0)
    assert list(
        txn.serial_movements.values_list("first", "last", "source_id", "destination_id", "state")
    ) == [(41, 60, a_acc.pk, b_acc.pk, "available")]
    assert_reconciled()


def test_lowest_first_transfer_spans_blocks_and_merges_at_the_destination(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=20, serials=(41, 60))

    txn = transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=50)

    assert blocks(market.cea) == [(1, 70, b_acc.number, "available"), (71, 100, a_acc.number, "available")]
    assert balance(a_acc, market.cea) == (30, 0)
    assert balance(b_acc, market.cea) == (70, 0)
    assert list(txn.serial_movements.order_by("first").values_list("first", "last")) == [(1, 40), (61, 70)]
    assert_reconciled()


def test_returning_serials_just_above_the_holders_block_merges_them(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, b = market.holder("B")
    market.give(a_acc, 100)
    transfer_create(
        actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=50, serials=(51, 100)
    )

    transfer_create(actor=b, source=b_acc, destination=a_acc, asset=market.cea, quantity=50)

    assert blocks(market.cea) == [(1, 100, a_acc.number, "available")]
    assert_reconciled()


def test_serials_the_account_does_not_hold_are_refused(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    market.give(b_acc, 100)
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=10, serials=(95, 104)
        )

    assert refused.value.code == "serials_not_available"
    assert refused.value.details == {"serials": [95, 104], "available_in_range": 6}
    assert snapshot() == before


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("auditor", "wrong_participant_kind"),
        ("to_sink", "invalid_destination"),
        ("not_transferable", "asset_not_transferable"),
        ("zero", "invalid_quantity"),
        ("fraction", "invalid_quantity"),
    ],
)
def test_more_refusals_change_nothing(market, case, code):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 50)
    actor, source, destination, asset, quantity = a, a_acc, b_acc, market.cea, 10
    if case == "auditor":
        _, source, actor = market.holder("Auditor", kind=ParticipantKind.AUDITOR)
    elif case == "to_sink":
        destination = system_account(AccountKind.RETIREMENT)
    elif case == "not_transferable":
        asset = cea_vintage_create(actor=market.registry_actor, vintage=2030, transferable=False)
        market.give(a_acc, 50, asset=asset)
    elif case == "zero":
        quantity = 0
    elif case == "fraction":
        quantity = 2.5
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        transfer_create(actor=actor, source=source, destination=destination, asset=asset, quantity=quantity)

    assert refused.value.code == code
    assert snapshot() == before
