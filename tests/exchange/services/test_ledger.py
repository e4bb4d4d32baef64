"""The posting function, holds and the serial block engine, called the way later services call them."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.actors import Actor
from core.errors import DomainError
from exchange.models import Account, AccountKind, Asset, Hold, HoldKind, HoldStatus, SerialMovement
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record
from exchange.services.ledger import Leg, Posted, hold_place, hold_release, journal_open
from exchange.services.ledger import ledger_post as _ledger_post
from exchange.services.transfers import transfer_create
from tests.factories import CashAssetFactory
from tests.helpers.ledger import assert_reconciled, balance, blocks, make_market, snapshot

pytestmark = pytest.mark.django_db


def ledger_post(txn, legs, **options) -> Posted:
    """The posting function, then the audit event a service records with it (reconcile asks every entry
    for its event, stating its postings)."""
    posted = _ledger_post(txn, legs, **options)
    audit_record(actor=Actor.system("tests"), action="test.post", obj=txn, payload={"entry_digest": posted.digest})
    return posted


def _journal(memo: str = "test"):
    txn, replayed = journal_open(
        kind="transfer", actor=Actor.system("tests"), idempotency_key=None, request={}, memo=memo
    )
    assert not replayed
    return txn


def _refused(call) -> str:
    """Run ``call`` in a savepoint, as a service would; return the refusal's code."""
    with pytest.raises(DomainError) as refused, transaction.atomic():
        call()
    return refused.value.code


def _hold(account: Account, asset: Asset, quantity: int, serials: tuple[int, int] | None = None) -> Hold:
    return hold_place(
        account=account,
        asset=asset,
        quantity=quantity,
        kind=HoldKind.ORDER,
        reference="order:1",
        serials=serials,
    )


# --- holds ---------------------------------------------------------------------------------------------
def test_hold_reserves_lowest_serials(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)

    hold = _hold(a_acc, market.cea, 10)

    assert balance(a_acc, market.cea) == (100, 10)
    assert blocks(market.cea) == [(1, 10, a_acc.number, "held"), (11, 100, a_acc.number, "available")]
    assert list(market.cea.serial_blocks.filter(state="held").values_list("hold_id", flat=True)) == [hold.pk]
    assert (hold.quantity, hold.remaining, hold.status) == (10, 10, HoldStatus.ACTIVE)
    assert_reconciled()


def test_held_units_cant_be_transferred(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    _hold(a_acc, market.cea, 10)
    before = snapshot()

    code = _refused(lambda: transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=91))

    assert code == "insufficient_available"
    assert snapshot() == before
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=90)
    assert balance(a_acc, market.cea) == (10, 10)
    assert blocks(market.cea) == [(1, 10, a_acc.number, "held"), (11, 100, b_acc.number, "available")]
    assert_reconciled()


def test_held_serials_cant_be_named_in_a_transfer(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    _hold(a_acc, market.cea, 10, serials=(41, 50))
    before = snapshot()

    code = _refused(
        lambda: transfer_create(
            actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=11, serials=(40, 50)
        )
    )

    assert code == "serials_not_available"
    assert snapshot() == before


def test_hold_release_merges_blocks_back(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)
    hold = _hold(a_acc, market.cea, 20, serials=(41, 60))
    assert blocks(market.cea) == [
        (1, 40, a_acc.number, "available"),
        (41, 60, a_acc.number, "held"),
        (61, 100, a_acc.number, "available"),
    ]

    released = hold_release(hold)

    assert released == 20
    assert blocks(market.cea) == [(1, 100, a_acc.number, "available")]
    assert balance(a_acc, market.cea) == (100, 0)
    hold.refresh_from_db()
    assert (hold.remaining, hold.status) == (0, HoldStatus.RELEASED)
    assert hold.ended_at is not None
    assert_reconciled()


def test_partial_release_gives_back_the_lowest_held_serials(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)
    hold = _hold(a_acc, market.cea, 10, serials=(51, 60))

    assert hold_release(hold, 4) == 4

    assert balance(a_acc, market.cea) == (100, 6)
    assert blocks(market.cea) == [
        (1, 54, a_acc.number, "available"),
        (55, 60, a_acc.number, "held"),
        (61, 100, a_acc.number, "available"),
    ]
    hold.refresh_from_db()
    assert (hold.remaining, hold.status, hold.ended_at) == (6, HoldStatus.ACTIVE, None)
    assert_reconciled()


def test_release_of_more_than_remains_is_refused_and_ended_hold_releases_nothing(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)
    hold = _hold(a_acc, market.cea, 10)
    before = snapshot()

    assert _refused(lambda: hold_release(hold, 11)) == "invalid_state"
    assert snapshot() == before

    hold_release(hold)
    after_release = snapshot()
    assert hold_release(hold) == 0
    assert snapshot() == after_release


def test_hold_larger_than_available_is_refused(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 100)
    _hold(a_acc, market.cea, 60)
    before = snapshot()

    assert _refused(lambda: _hold(a_acc, market.cea, 41)) == "insufficient_available"

    assert snapshot() == before
    assert Hold.objects.count() == 1


def test_posting_from_a_hold_consumes_it_partly_then_ends_it(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    hold = _hold(a_acc, market.cea, 10)

    ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 4, hold=hold)])

    assert balance(a_acc, market.cea) == (96, 6)
    assert balance(b_acc, market.cea) == (4, 0)
    assert blocks(market.cea) == [
        (1, 4, b_acc.number, "available"),
        (5, 10, a_acc.number, "held"),
        (11, 100, a_acc.number, "available"),
    ]
    hold.refresh_from_db()
    assert (hold.remaining, hold.status) == (6, HoldStatus.ACTIVE)
    assert_reconciled()

    ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 6, hold=hold)])

    assert balance(a_acc, market.cea) == (90, 0)
    assert balance(b_acc, market.cea) == (10, 0)
    assert blocks(market.cea) == [(1, 10, b_acc.number, "available"), (11, 100, a_acc.number, "available")]
    hold.refresh_from_db()
    assert (hold.remaining, hold.status) == (0, HoldStatus.POSTED)
    assert hold.ended_at is not None
    assert_reconciled()


def test_posting_more_than_a_hold_has_left_or_from_an_ended_hold_is_refused(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    hold = _hold(a_acc, market.cea, 10)
    before = snapshot()

    def post(quantity: int) -> None:
        ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, quantity, hold=hold)])

    assert _refused(lambda: post(11)) == "invalid_state"
    assert snapshot() == before

    hold_release(hold)
    released = snapshot()
    assert _refused(lambda: post(1)) == "invalid_state"
    assert snapshot() == released


def test_a_hold_on_another_account_is_refused(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    market.give(b_acc, 100)
    hold = _hold(a_acc, market.cea, 10)
    before = snapshot()

    code = _refused(lambda: ledger_post(_journal(), [Leg(market.cea, b_acc, a_acc, 5, hold=hold)]))

    assert code == "invalid_state"
    assert snapshot() == before


def test_cash_holds_change_balances_only():
    market = make_market()
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    cny = CashAssetFactory()
    ledger_post(_journal("deposit"), [Leg(cny, system_account(AccountKind.ISSUANCE), a_acc, 100_000)])
    hold = _hold(a_acc, cny, 30_000)
    assert balance(a_acc, cny) == (100_000, 30_000)

    ledger_post(_journal("settle"), [Leg(cny, a_acc, b_acc, 12_345, hold=hold)])
    hold_release(hold)

    assert balance(a_acc, cny) == (87_655, 0)
    assert balance(b_acc, cny) == (12_345, 0)
    assert not cny.serial_blocks.exists()
    assert not SerialMovement.objects.filter(asset=cny).exists()
    assert_reconciled()


def test_a_leg_funded_by_several_holds_consumes_each_by_its_share():
    market = make_market()
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    cny = CashAssetFactory()
    ledger_post(_journal("deposit"), [Leg(cny, system_account(AccountKind.ISSUANCE), a_acc, 100_000)])
    first, second, third = _hold(a_acc, cny, 30_000), _hold(a_acc, cny, 20_000), _hold(a_acc, cny, 10_000)
    txn = _journal("settle")

    posted = ledger_post(txn, [Leg(cny, a_acc, b_acc, 45_000, holds=[(first, 30_000), (second, 15_000)])])

    assert balance(a_acc, cny) == (55_000, 15_000)  # 5,000 left of the second hold, the third untouched
    assert balance(b_acc, cny) == (45_000, 0)
    assert posted.ended_holds == {first.pk}
    ended, partly, untouched = (Hold.objects.get(pk=h.pk) for h in (first, second, third))
    assert (ended.remaining, ended.status) == (0, HoldStatus.POSTED)
    assert ended.ended_at is not None
    assert (partly.remaining, partly.status, partly.ended_at) == (5_000, HoldStatus.ACTIVE, None)
    assert (untouched.remaining, untouched.status) == (10_000, HoldStatus.ACTIVE)
    assert sorted(txn.postings.values_list("account_id", "quantity")) == sorted(
        [(a_acc.pk, -45_000), (b_acc.pk, 45_000)]
    )
    assert_reconciled()


def test_a_leg_funded_by_several_holds_of_serial_units_moves_each_holds_blocks(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    first, second = _hold(a_acc, market.cea, 10), _hold(a_acc, market.cea, 10)  # serials 1-10, 11-20

    posted = ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 15, holds=[(second, 10), (first, 5)])])

    assert posted.ranges == [[(11, 20), (1, 5)]]
    assert posted.ended_holds == {second.pk}
    assert blocks(market.cea) == [
        (1, 5, b_acc.number, "available"),
        (6, 10, a_acc.number, "held"),
        (11, 20, b_acc.number, "available"),
        (21, 100, a_acc.number, "available"),
    ]
    assert balance(a_acc, market.cea) == (85, 5)
    assert Hold.objects.get(pk=first.pk).remaining == 5
    assert_reconciled()


def test_holds_funding_a_leg_must_add_up_be_the_sources_and_have_enough_left(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    market.give(b_acc, 100)
    first, second = _hold(a_acc, market.cea, 10), _hold(a_acc, market.cea, 10)
    elsewhere = _hold(b_acc, market.cea, 10)
    before = snapshot(), sorted(Hold.objects.values_list("id", "remaining", "status"))

    def post(quantity, holds):
        return lambda: ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, quantity, holds=holds)])

    assert _refused(post(15, [(first, 10), (second, 4)])) == "invalid_quantity"
    assert _refused(post(15, [(first, 10), (second, 0), (second, 5)])) == "invalid_quantity"
    assert _refused(post(15, [(first, 10), (elsewhere, 5)])) == "invalid_state"
    assert _refused(post(15, [(first, 11), (second, 4)])) == "invalid_state"  # more than the first has left
    assert (snapshot(), sorted(Hold.objects.values_list("id", "remaining", "status"))) == before
    with pytest.raises(ValueError, match="neither one hold nor serials"):
        ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 10, hold=first, holds=[(first, 10)])])


# --- several legs in one posting -----------------------------------------------------------------------
def test_several_legs_from_one_account_take_consecutive_serials(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    _, c_acc, _ = market.holder("C")
    market.give(a_acc, 100)
    txn = _journal()

    posted = ledger_post(txn, [Leg(market.cea, a_acc, b_acc, 10), Leg(market.cea, a_acc, c_acc, 20)])

    assert posted.ranges == [[(1, 10)], [(11, 30)]]
    assert blocks(market.cea) == [
        (1, 10, b_acc.number, "available"),
        (11, 30, c_acc.number, "available"),
        (31, 100, a_acc.number, "available"),
    ]
    assert [(p.account_id, p.quantity, p.balance_after) for p in txn.postings.order_by("id")] == [
        (a_acc.pk, -10, 90),
        (b_acc.pk, 10, 10),
        (a_acc.pk, -20, 70),
        (c_acc.pk, 20, 20),
    ]
    assert_reconciled()


def test_a_later_leg_moves_on_units_an_earlier_leg_delivered(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    _, c_acc, _ = market.holder("C")
    market.give(a_acc, 100)
    market.give(b_acc, 5)  # serials 101-105, above what A passes on
    txn = _journal()

    posted = ledger_post(txn, [Leg(market.cea, a_acc, b_acc, 10), Leg(market.cea, b_acc, c_acc, 12)])

    assert posted.ranges == [[(1, 10)], [(1, 10), (101, 102)]]
    assert blocks(market.cea) == [
        (1, 10, c_acc.number, "available"),
        (11, 100, a_acc.number, "available"),
        (101, 102, c_acc.number, "available"),
        (103, 105, b_acc.number, "available"),
    ]
    assert [balance(acc, market.cea) for acc in (a_acc, b_acc, c_acc)] == [(90, 0), (3, 0), (12, 0)]
    assert_reconciled()


def test_units_sent_and_sent_back_in_one_posting_land_where_they_started(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)

    ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 30), Leg(market.cea, b_acc, a_acc, 30)])

    assert blocks(market.cea) == [(1, 100, a_acc.number, "available")]
    assert balance(b_acc, market.cea) == (0, 0)
    assert_reconciled()


def test_several_legs_that_together_overdraw_are_refused_whole(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    _, c_acc, _ = market.holder("C")
    market.give(a_acc, 100)
    before = snapshot()

    code = _refused(
        lambda: ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 60), Leg(market.cea, a_acc, c_acc, 41)])
    )

    assert code == "insufficient_available"
    assert snapshot() == before


def test_a_leg_to_the_same_account_or_of_nothing_is_refused(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 100)
    before = snapshot()

    assert _refused(lambda: ledger_post(_journal(), [Leg(market.cea, a_acc, a_acc, 5)])) == "same_account"
    assert _refused(lambda: ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 0)])) == "invalid_quantity"
    assert _refused(lambda: ledger_post(_journal(), [Leg(market.cea, a_acc, b_acc, 5, serials=(1, 6))])) == (
        "invalid_quantity"
    )
    assert snapshot() == before


def test_a_leg_may_move_units_that_a_later_leg_delivers(market):
    """B to C listed before A to B: B's balance nets out, and the serial engine waits for A's units."""
    from exchange.models import TransactionKind
    from exchange.services.audit import audit_record, service

    _, a, _ = market.holder("A")
    _, b, _ = market.holder("B")
    _, c, _ = market.holder("C")
    market.give(a, 10)

    @service
    def chain():
        txn, _ = journal_open(
            kind=TransactionKind.TRANSFER, actor=market.registry_actor, idempotency_key=None, request={}
        )
        ledger_post(txn, [Leg(market.cea, b, c, 10), Leg(market.cea, a, b, 10)])
        audit_record(actor=market.registry_actor, action="test.chain", obj=txn, payload={})

    chain()

    assert balance(a, market.cea) == (0, 0)
    assert balance(b, market.cea) == (0, 0)
    assert blocks(market.cea) == [(1, 10, c.number, "available")]
    assert_reconciled()
