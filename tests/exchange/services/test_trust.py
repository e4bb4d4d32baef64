"""Trusted accounts and pending transfers: untrusted destinations wait (units held), two admins trust."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import participant_reactivate, participant_suspend
from core import clock
from core.errors import DomainError
from exchange.models import PendingStatus, PendingTransfer, Transaction, TrustedAccount, TrustStatus
from exchange.services.retirement import retirement_create
from exchange.services.transfers import TransferOrder, transfer_create, transfers_batch_create
from exchange.services.trust import (
    pending_transfer_cancel,
    pending_transfers_execute,
    trusted_account_approve,
    trusted_account_propose,
    trusted_account_remove,
)
from tests.factories import MembershipFactory
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, make_market, snapshot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=clock.MARKET_TZ)
DELAY, TRUST_DELAY = timedelta(hours=26), timedelta(hours=24)


@pytest.fixture(autouse=True)
def trust_on():
    config = {
        **settings.GREENLEDGER,
        "TRUSTED_ACCOUNTS": True,
        "PENDING_TRANSFER_DELAY_SECONDS": 26 * 3600,
        "TRUST_DELAY_SECONDS": 24 * 3600,
    }
    with override_settings(GREENLEDGER=config), clock.pinned(NOW):
        yield


@pytest.fixture
def world():
    market = make_market()
    sender, sender_acc, sender_actor = market.holder("Sender")
    _, dest_acc, _ = market.holder("Receiver")
    market.give(sender_acc, 100)
    return market, sender, sender_acc, sender_actor, dest_acc


def send(actor, source, destination, asset, quantity=10, key=None):
    return transfer_create(
        actor=actor, source=source, destination=destination, asset=asset, quantity=quantity, idempotency_key=key
    )


def test_a_transfer_to_an_untrusted_account_waits_with_its_units_held(world):
    market, _, sender_acc, actor, dest_acc = world
    pending = send(actor, sender_acc, dest_acc, market.cea)

    assert isinstance(pending, PendingTransfer)
    assert (pending.status, pending.execute_after) == (PendingStatus.PENDING, NOW + DELAY)
    assert balance(sender_acc, market.cea) == (100, 10)
    assert balance(dest_acc, market.cea) == (0, 0)
    assert blocks(market.cea, sender_acc)[0] == (1, 10, sender_acc.number, "held")
    assert not Transaction.objects.filter(kind="transfer").exists()
    # held units are not available to anything else
    with pytest.raises(DomainError) as refused:
        send(actor, sender_acc, dest_acc, market.cea, quantity=91)
    assert refused.value.code == "insufficient_available"


def test_the_scheduled_job_carries_it_out_once_after_the_delay(world):
    market, _, sender_acc, actor, dest_acc = world
    pending = send(actor, sender_acc, dest_acc, market.cea)

    assert pending_transfers_execute() == 0  # not yet due
    with clock.pinned(NOW + DELAY):
        assert pending_transfers_execute() == 1
        assert pending_transfers_execute() == 0

    pending.refresh_from_db()
    assert pending.status == PendingStatus.EXECUTED
    assert pending.transaction.kind == "transfer"
    assert balance(sender_acc, market.cea) == (90, 0)
    assert balance(dest_acc, market.cea) == (10, 0)
    assert_reconciled()


def test_the_sender_cancels_and_the_units_are_available_again(world):
    market, _, sender_acc, actor, dest_acc = world
    pending = send(actor, sender_acc, dest_acc, market.cea)
    _, _, stranger = market.holder("Stranger")
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        pending_transfer_cancel(actor=stranger, pending=pending)
    assert refused.value.code == "pending_transfer_not_found"
    assert snapshot() == before
    assert PendingTransfer.objects.get(pk=pending.pk).status == PendingStatus.PENDING

    pending_transfer_cancel(actor=actor, pending=pending)

    assert balance(sender_acc, market.cea) == (100, 0)
    with pytest.raises(DomainError) as again:
        pending_transfer_cancel(actor=actor, pending=pending)
    assert again.value.code == "pending_transfer_not_pending"
    with clock.pinned(NOW + DELAY):
        assert pending_transfers_execute() == 0
    assert balance(dest_acc, market.cea) == (0, 0)
    assert_reconciled()


def test_a_suspended_senders_transfer_stays_pending(world):
    market, sender, sender_acc, actor, dest_acc = world
    pending = send(actor, sender_acc, dest_acc, market.cea)
    participant_suspend(actor=market.registry_actor, participant=sender, reason="account taken over")
    with clock.pinned(NOW + DELAY):
        assert pending_transfers_execute() == 0
        pending.refresh_from_db()
        assert pending.status == PendingStatus.PENDING
        participant_reactivate(actor=market.registry_actor, participant=sender, reason="cleared")
        assert pending_transfers_execute() == 1


def test_own_accounts_receive_at_once(world):
    market, sender, sender_acc, actor, _ = world
    from exchange.services.accounts import account_open

    second = account_open(actor=market.registry_actor, participant=sender, name="second")
    assert isinstance(send(actor, sender_acc, second, market.cea), Transaction)
    assert balance(second, market.cea) == (10, 0)


def test_retirement_is_never_delayed(world):
    market, _, sender_acc, actor, _ = world
    retirement_create(actor=actor, account=sender_acc, asset=market.cea, quantity=5, beneficiary="b", reason="r")
    assert balance(sender_acc, market.cea) == (95, 0)


def test_trusting_takes_two_admins_and_a_delay(world):
    market, sender, sender_acc, first_admin, dest_acc = world
    second_admin = actor_for(sender, Role.ADMIN)
    trader = actor_for(sender, Role.TRADER)
    entry = trusted_account_propose(actor=first_admin, account=dest_acc, label="our broker")
    for actor, code in ((first_admin, "trust_same_admin"), (trader, "role_forbidden")):
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            trusted_account_approve(actor=actor, entry=entry)
        assert refused.value.code == code
        assert snapshot() == before

    approved = trusted_account_approve(actor=second_admin, entry=entry)

    assert (approved.status, approved.effective_at) == (TrustStatus.APPROVED, NOW + TRUST_DELAY)
    assert isinstance(send(first_admin, sender_acc, dest_acc, market.cea), PendingTransfer)  # not yet effective
    with clock.pinned(NOW + TRUST_DELAY):
        assert isinstance(send(first_admin, sender_acc, dest_acc, market.cea), Transaction)
        trusted_account_remove(actor=second_admin, entry=approved)
        assert isinstance(send(first_admin, sender_acc, dest_acc, market.cea), PendingTransfer)


def test_the_database_refuses_a_self_approved_trust(world):
    _, _, _, admin, dest_acc = world
    entry = trusted_account_propose(actor=admin, account=dest_acc)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrustedAccount.objects.filter(pk=entry.pk).update(status="approved", approved_by=entry.proposed_by)


def test_a_pending_transfer_replays_under_its_idempotency_key(world):
    market, _, sender_acc, actor, dest_acc = world
    first = send(actor, sender_acc, dest_acc, market.cea, key="k1")
    again = send(actor, sender_acc, dest_acc, market.cea, key="k1")
    assert again.pk == first.pk
    assert balance(sender_acc, market.cea) == (100, 10)
    with pytest.raises(DomainError) as refused:
        send(actor, sender_acc, dest_acc, market.cea, quantity=11, key="k1")
    assert refused.value.code == "idempotency_conflict"


def test_over_http_a_pending_transfer_is_202_and_listed(world):
    market, sender, sender_acc, _, dest_acc = world
    client = APIClient()
    client.force_authenticate(MembershipFactory(participant=sender, role=Role.TRADER).user)
    body = {"source": sender_acc.number, "destination": dest_acc.number, "asset": "CEA-2024", "quantity": 7}

    response = client.post("/api/v1/transfers", body, format="json")

    assert response.status_code == 202, response.json()
    pending = response.json()["pending_transfer"]
    assert (pending["quantity"], pending["status"]) == (7, "pending")
    listed = client.get("/api/v1/transfers/pending").json()["results"]
    assert [p["id"] for p in listed] == [pending["id"]]
    cancelled = client.post(f"/api/v1/transfers/pending/{pending['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert balance(sender_acc, market.cea) == (100, 0)


# --- one key, two stores: a transfer's key is on its journal entry or on its pending transfer -------------
def _trust(sender, first_admin, account):
    """``account`` on the sender's trusted list, effective now (the clock moves past the trust delay)."""
    entry = trusted_account_propose(actor=first_admin, account=account)
    trusted_account_approve(actor=actor_for(sender, Role.ADMIN), entry=entry)
    return entry


def _lowest_serials(account, asset, quantity):
    first = min(b[0] for b in blocks(asset, account) if b[3] == "available")
    return (first, first + quantity - 1)


def _mover(world, exact_serials):
    """Transfers of the world's sender to its receiver under one key: 10 t (lowest first, or exact serials)."""
    market, _, sender_acc, actor, dest_acc = world
    serials = _lowest_serials(sender_acc, market.cea, 10) if exact_serials else None

    def move(quantity=10):
        return transfer_create(
            actor=actor,
            source=sender_acc,
            destination=dest_acc,
            asset=market.cea,
            quantity=quantity,
            idempotency_key="k-mixed",
            serials=serials if quantity == 10 else None,
        )

    return move


@pytest.mark.parametrize("exact_serials", [False, True], ids=["lowest-first", "exact-serials"])
def test_a_key_that_made_a_pending_transfer_replays_it_after_the_destination_is_trusted(world, exact_serials):
    market, sender, sender_acc, actor, dest_acc = world
    move = _mover(world, exact_serials)
    first = move()
    assert isinstance(first, PendingTransfer)
    _trust(sender, actor, dest_acc)
    with clock.pinned(NOW + TRUST_DELAY):
        before = snapshot()
        replayed = move()
        assert isinstance(replayed, PendingTransfer)
        assert replayed.pk == first.pk
        with pytest.raises(DomainError) as refused:
            move(quantity=7)
        assert refused.value.code == "idempotency_conflict"
        assert snapshot() == before
    assert balance(sender_acc, market.cea) == (100, 10)
    assert balance(dest_acc, market.cea) == (0, 0)
    assert not Transaction.objects.filter(idempotency_key="k-mixed").exists()


@pytest.mark.parametrize("exact_serials", [False, True], ids=["lowest-first", "exact-serials"])
def test_a_key_that_made_an_immediate_transfer_replays_it_after_the_trust_is_removed(world, exact_serials):
    market, sender, sender_acc, actor, dest_acc = world
    entry = _trust(sender, actor, dest_acc)
    move = _mover(world, exact_serials)
    with clock.pinned(NOW + TRUST_DELAY):
        first = move()
        assert isinstance(first, Transaction)
        trusted_account_remove(actor=actor, entry=TrustedAccount.objects.get(pk=entry.pk))
        before = snapshot()
        replayed = move()
        assert isinstance(replayed, Transaction)
        assert replayed.pk == first.pk
        with pytest.raises(DomainError) as refused:
            move(quantity=7)
        assert refused.value.code == "idempotency_conflict"
        assert snapshot() == before
    assert balance(sender_acc, market.cea) == (90, 0)
    assert balance(dest_acc, market.cea) == (10, 0)
    assert not PendingTransfer.objects.exists()


def test_a_batch_under_a_key_that_made_a_pending_transfer_is_refused(world):
    market, _, sender_acc, actor, dest_acc = world
    send(actor, sender_acc, dest_acc, market.cea, key="k-batch")
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        transfers_batch_create(
            actor=actor, transfers=[TransferOrder(sender_acc, dest_acc, market.cea, 1)], idempotency_key="k-batch"
        )
    assert refused.value.code == "idempotency_conflict"
    assert snapshot() == before


def test_a_surrender_is_immediate_with_trusted_accounts_on():
    from exchange.models import AccountKind, Surrender
    from tests.helpers.compliance import make_cycle
    from tests.helpers.ledger import system

    cycle = make_cycle(2024)
    entity = cycle.entity("Shougang Steel", emissions=100)
    _, stranger_acc, _ = cycle.market.holder("Stranger")
    cycle.market.give(entity.account, 100)
    assert isinstance(send(entity.actor, entity.account, stranger_acc, cycle.market.cea), PendingTransfer)

    cycle.surrender(entity, (cycle.market.cea, 60))

    assert Surrender.objects.filter(obligation=entity.obligation).count() == 1
    assert PendingTransfer.objects.count() == 1  # only the transfer above
    assert balance(entity.account, cycle.market.cea) == (40, 10)
    assert balance(system(AccountKind.SURRENDER), cycle.market.cea) == (60, 0)
    assert_reconciled()


def test_exchange_settlement_between_untrusting_participants_is_immediate():
    from exchange.services.settlement import settlement_run
    from tests.helpers.market import make_exchange

    ex = make_exchange()
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    assert isinstance(send(seller, seller_acc, buyer_acc, ex.cea, quantity=1), PendingTransfer)
    ex.order(seller, seller_acc, "sell", 8000, 100)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)

    settlement_run()

    assert PendingTransfer.objects.count() == 1  # only the transfer above
    # 80.00 x 100 = 8,000.00 yuan, 48.00 fee from each side
    assert balance(buyer_acc, ex.cea) == (100, 0)
    assert balance(buyer_acc, ex.cny) == (10_000_000 - 804_800, 0)
    assert balance(seller_acc, ex.cea) == (900, 1)
    assert balance(seller_acc, ex.cny) == (800_000 - 4_800, 0)
    assert_reconciled()
