"""Participant events are projected from the audit trail in its transaction: who gets what, numbered how."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from core import clock
from exchange.events import ROUTES, event_types, sync
from exchange.models import (
    Account,
    ApprovalRequest,
    AuditEvent,
    EventRoute,
    Obligation,
    Order,
    ParticipantEvent,
    PendingTransfer,
    PledgeLoan,
    Trade,
)
from exchange.services.audit import audit_record
from exchange.services.cash import cash_withdraw
from exchange.services.orders import order_cancel
from exchange.services.pledges import pledge_default
from exchange.services.retirement import retirement_create
from exchange.services.session_close import orders_cancel_at_close
from exchange.services.settlement import settlement_run
from exchange.services.transfers import TransferOrder, transfer_create, transfers_batch_create
from exchange.services.trust import pending_transfer_cancel, pending_transfers_execute
from tests.factories import AccountFactory
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import make_pledges

pytestmark = pytest.mark.django_db

ACCOUNT_NUMBER = re.compile(r"^CN-\d{3}-\d{6}$")


def events_of(participant) -> list[ParticipantEvent]:
    return list(ParticipantEvent.objects.filter(participant=participant).order_by("number"))


def test_a_fill_gives_both_sides_their_own_fill_event_and_nobody_else_any(in_session):
    p = make_pledges()
    ex = p.ex
    seller, seller_account, seller_actor = ex.trader("Seller", units=100)
    buyer, buyer_account, buyer_actor = ex.trader("Buyer", cash_fen=10_000_000)
    outsider = ex.trader("Outsider", units=100, cash_fen=10_000_000)[0]
    before = ParticipantEvent.objects.count()

    sell = ex.order(seller_actor, seller_account, "sell", 8000, 10).order
    placed = ex.order(buyer_actor, buyer_account, "buy", 8000, 10)

    [trade] = placed.trades
    new = list(ParticipantEvent.objects.order_by("id"))[before:]
    fills = [e for e in new if e.type == "order.filled"]
    assert sorted(
        (e.participant_id, e.payload["order"], e.payload["side"], e.payload["liquidity"]) for e in fills
    ) == sorted([(seller.pk, sell.pk, "sell", "maker"), (buyer.pk, placed.order.pk, "buy", "taker")])
    for event in fills:
        # Only its own side: its order, never the counterparty's order or account.
        assert set(event.payload) == {
            "order",
            "client_order_id",
            "trade",
            "asset",
            "side",
            "price",
            "quantity",
            "order_filled",
            "order_status",
            "liquidity",
        }
        assert event.payload["trade"] == trade.pk
        assert event.payload["quantity"] == 10
        assert event.payload["price"] == "80.00"
        assert event.payload["order_status"] == "filled"
        assert event.audit_seq == AuditEvent.objects.get(action="order.place", object_id=str(placed.order.pk)).seq
    assert {e.participant_id for e in new} == {seller.pk, buyer.pk}
    assert not ParticipantEvent.objects.filter(participant=outsider, id__gt=new[0].id).exists()
    assert [e.type for e in events_of(buyer)][-2:] == ["order.accepted", "order.filled"]


def test_numbers_run_1_2_3_per_participant_in_the_order_of_the_audit_trail(in_session):
    p = make_pledges()
    _, account, actor = p.borrower
    own = AccountFactory(participant=p.borrower[0])
    for quantity in (1, 2, 3, 4):
        transfer_create(actor=actor, source=account, destination=own, asset=p.cea, quantity=quantity)
    events = events_of(p.borrower[0])
    assert [e.number for e in events] == list(range(1, len(events) + 1))
    assert [e.audit_seq for e in events] == sorted(e.audit_seq for e in events)
    executed = [e for e in events if e.type == "transfer.executed"]
    assert [e.payload["quantity"] for e in executed] == [1, 2, 3, 4]
    assert executed[0].payload["source"] == account.number
    assert executed[0].payload["destination"] == own.number
    assert isinstance(executed[0].payload["transaction"], int)
    # One event for the participant though both accounts are its own.
    assert len(executed) == 4


def test_an_action_without_a_route_writes_no_event_and_a_route_added_later_does(in_session):
    p = make_pledges()
    before = ParticipantEvent.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM exchange_eventroute WHERE action = 'something.new'")
        assert cursor.fetchone()[0] == 0
    with transaction.atomic():
        audit_record(actor=p.borrower[2], action="something.new", obj=("thing", 1), payload={"n": 1})
    assert ParticipantEvent.objects.count() == before

    EventRoute.objects.create(
        action="something.new",
        event_type="thing.happened",
        resolver="row",
        args={"table": "accounts_participant", "columns": ["id"], "key": "who", "fields": ["n"]},
    )
    with transaction.atomic():
        audit_record(
            actor=p.borrower[2], action="something.new", obj=("thing", 2), payload={"n": 2, "who": p.borrower[0].pk}
        )
    [event] = ParticipantEvent.objects.filter(type="thing.happened")
    assert (event.participant_id, event.payload) == (p.borrower[0].pk, {"n": "2"})  # canonical JSON: numbers as strings
    assert sync() is True  # the table follows exchange.events again
    assert not EventRoute.objects.filter(action="something.new").exists()
    assert EventRoute.objects.count() == len(ROUTES)


def test_events_are_never_updated(in_session):
    p = make_pledges()
    event = ParticipantEvent.objects.filter(participant=p.borrower[0]).first()

    with pytest.raises(DatabaseError), transaction.atomic():
        ParticipantEvent.objects.filter(pk=event.pk).update(type="changed")


# --- isolation, for every event type ---------------------------------------------------------------------
def _owns_account(participant_id: int, number: str) -> bool:
    return Account.objects.filter(number=number, participant_id=participant_id).exists()


def _concerns(event: ParticipantEvent) -> bool:
    """The event is about the participant's own accounts, orders, trades, pledges or obligations."""
    pid, data, kind = event.participant_id, event.payload, event.type
    if kind.startswith(("order.", "listing.")):
        return Order.objects.get(pk=data["order"]).participant_id == pid
    if kind == "block_offer.received":
        return Order.objects.get(pk=data["offer"]).counterparty_id == pid
    if kind.startswith("block_offer."):
        return Order.objects.get(pk=data["offer"]).participant_id == pid
    if kind == "auction.result":
        order = Order.objects.get(pk=data["order"])
        return order.participant_id == pid and order.auction_id == data["auction"]
    if kind == "trade.settled":
        trades = [t for asset in data["assets"] for t in asset["trades"]]
        return (
            all(
                pid in {t.buy_order.participant_id, t.sell_order.participant_id}
                for t in Trade.objects.filter(pk__in=trades).select_related("buy_order", "sell_order")
            )
            and len(trades) == data["trades"]
        )
    if kind in {"transfer.executed", "transfer.pending_executed"} or kind.startswith("transfer.non_trade_"):
        return _owns_account(pid, data["source"]) or _owns_account(pid, data["destination"])
    if kind == "transfer.pending":
        return _owns_account(pid, data["source"])
    if kind == "transfer.pending_cancelled":
        return PendingTransfer.objects.get(pk=data["pending_transfer"]).participant_id == pid
    if kind.startswith(("cash.", "units.")):
        return _owns_account(pid, data["account"])
    if kind.startswith("pledge."):
        loan = PledgeLoan.objects.get(pk=data["pledge"])
        return pid in {loan.borrower_id, loan.lender_id}
    if kind.startswith("approval."):
        return ApprovalRequest.objects.get(pk=data["approval"]).requested_participant_id == pid
    if kind == "obligation.status_changed":
        return Obligation.objects.get(pk=data["obligation"]).entity_id == pid
    if kind == "compliance.surrendered":
        return int(data["entity"]) == pid
    if kind.startswith("participant."):
        return data["participant"] == pid
    raise AssertionError(f"no isolation rule for {kind}")


def _account_numbers(value) -> set[str]:
    if isinstance(value, str):
        return {value} if ACCOUNT_NUMBER.match(value) else set()
    if isinstance(value, dict):
        return set().union(*(_account_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_account_numbers(v) for v in value)) if value else set()
    return set()


# What the scenario below produces; the rest are checked by the same rules where other tests produce them.
SCENARIO_TYPES = {
    "order.accepted",
    "order.filled",
    "order.cancelled",
    "order.expired",
    "trade.settled",
    "transfer.executed",
    "transfer.pending",
    "transfer.pending_executed",
    "transfer.pending_cancelled",
    "cash.deposited",
    "cash.withdrawn",
    "units.allocated",
    "units.retired",
    "pledge.requested",
    "pledge.registered",
    "pledge.defaulted",
}


@pytest.fixture
def scenario(settings):
    """Two traders deal with each other, a bank lends to one, and a bystander trades with nobody."""
    settings.GREENLEDGER = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True}
    with clock.pinned(IN_SESSION):
        p = make_pledges()
        ex = p.ex
        a, a_account, a_actor = p.borrower
        b, b_account, b_actor = ex.trader("Buyer", units=50, cash_fen=50_000_000)
        bystander, c_account, c_actor = ex.trader("Bystander", units=100, cash_fen=10_000_000)
        ex.order(c_actor, c_account, "sell", 8700, 10)  # never fills: priced away
        ex.order(a_actor, a_account, "sell", 8000, 10)
        ex.order(b_actor, b_account, "buy", 8000, 10)
        cancel_me = ex.order(a_actor, a_account, "sell", 8500, 5).order
        order_cancel(actor=a_actor, order=cancel_me)
        ex.order(b_actor, b_account, "buy", 7300, 5)  # rests, then expires at the close
        settlement_run()
        cash_withdraw(actor=ex.operator, account=b_account, amount_fen=100, reference="w-1")
        own = AccountFactory(participant=a)
        transfer_create(actor=a_actor, source=a_account, destination=own, asset=p.cea, quantity=3)
        transfers_batch_create(actor=a_actor, transfers=[TransferOrder(a_account, own, p.cea, 1)])
        waiting = transfer_create(actor=a_actor, source=a_account, destination=b_account, asset=p.cea, quantity=2)
        cancelled = transfer_create(actor=a_actor, source=a_account, destination=b_account, asset=p.cea, quantity=1)
        pending_transfer_cancel(actor=a_actor, pending=cancelled)
        retirement_create(actor=a_actor, account=a_account, asset=p.cea, quantity=1, beneficiary="x", reason="y")
        # A joint application (the borrower's request, the lender's confirmation) that the registry registers.
        loan = p.register(p.applied(100, maturity_date=IN_SESSION.date() + timedelta(days=1)))
    with clock.pinned(IN_SESSION + timedelta(days=3)):
        pending_transfers_execute()
        orders_cancel_at_close()
        pledge_default(actor=p.bank[2], loan=loan)
    assert isinstance(waiting, PendingTransfer)
    return {"bystander": bystander, "a": a, "b": b, "bank": p.bank[0]}


def test_the_scenario_produces_every_type_it_names(scenario):
    produced = set(ParticipantEvent.objects.values_list("type", flat=True))
    assert produced >= SCENARIO_TYPES, sorted(SCENARIO_TYPES - produced)


@pytest.mark.parametrize("event_type", event_types())
def test_a_participant_never_receives_another_participants_event(scenario, event_type):
    events = list(ParticipantEvent.objects.filter(type=event_type))
    if event_type in SCENARIO_TYPES:
        assert events, f"the scenario should produce {event_type}"
    for event in events:
        assert _concerns(event), f"{event.type} #{event.number} went to {event.participant_id}: {event.payload}"
        if not event.type.startswith(("transfer.", "pledge.")):
            # Account numbers named are its own (a transfer names the counterparty's account, as a statement
            # does; a pledge's borrower and lender both see the pledge's accounts, as its register entry shows).
            foreign = {n for n in _account_numbers(event.payload) if not _owns_account(event.participant_id, n)}
            assert not foreign, f"{event.type} shows {foreign} to {event.participant_id}"
    # The bystander only ever sees its own deposit and its own order.
    assert set(ParticipantEvent.objects.filter(participant=scenario["bystander"]).values_list("type", flat=True)) <= {
        "cash.deposited",
        "order.accepted",
        "units.allocated",
        "order.expired",
    }


def test_every_route_names_a_type_and_every_type_has_an_isolation_rule():
    for route in ROUTES:
        assert route.event_type
        assert route.resolver
    rules = {
        "order.",
        "listing.",
        "block_offer.",
        "auction.",
        "trade.",
        "transfer.",
        "cash.",
        "units.",
        "pledge.",
        "approval.",
        "obligation.",
        "compliance.",
        "participant.",
    }
    assert all(t.startswith(tuple(rules)) for t in event_types())


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_no_gap_in_a_participants_numbers():
    from tests.helpers.concurrency import attempt, run_workers

    with clock.pinned(IN_SESSION):
        p = make_pledges()
        senders = [p.ex.trader(f"Sender {i}", units=50) for i in range(4)]
        receiver = p.ex.trader("Receiver")[0]
        receiving = [AccountFactory(participant=receiver) for _ in range(4)]

    def work(index: int) -> list[str]:
        _, account, actor = senders[index]
        with clock.pinned(IN_SESSION):
            # Each sender's own second account, and the receiver by the registry's hand: both immediate.
            return [
                attempt(
                    lambda: transfer_create(
                        actor=actor, source=account, destination=own_second[index], asset=p.cea, quantity=1
                    )
                )
                for _ in range(10)
            ]

    own_second = [AccountFactory(participant=s[0]) for s in senders]
    assert receiving  # the receiver's accounts exist; the senders move between their own
    outcomes = run_workers(4, work)
    assert outcomes == ["ok"] * 40
    for participant, _, _ in senders:
        numbers = list(
            ParticipantEvent.objects.filter(participant=participant)
            .order_by("number")
            .values_list("number", "audit_seq")
        )
        assert [n for n, _ in numbers] == list(range(1, len(numbers) + 1))
        assert [s for _, s in numbers] == sorted(s for _, s in numbers)
