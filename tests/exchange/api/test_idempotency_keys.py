"""One Idempotency-Key mechanism on every keyed endpoint (issue 13 point 2, issue 15 finding 13).

A key names one request of one participant, whatever the endpoint: reused on another endpoint it is 409
``idempotency_conflict``. Eight clients sending one key at once get one effect and one answer (the first
request's, replayed to the others byte for byte), never a 5xx. A key is 1 to 128 characters on every
endpoint (settlement batches kept 100), and a longer one is the same 400 everywhere, changing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from core import clock
from exchange.api.idempotency import REPLAYED_HEADER
from exchange.errors import RequestInProgress
from exchange.models import (
    ApprovalOperation,
    ApprovalRequest,
    IdempotentRequest,
    Order,
    PendingTransfer,
    PledgeLoan,
    SettlementBatch,
    Transaction,
)
from exchange.services import idempotency
from exchange.services.approvals import approval_request
from exchange.services.idempotency import idempotency_claim
from exchange.services.settlement import settlement_run
from tests.helpers.api import all_at_once, api_routes, client_for, error_of, token_for
from tests.helpers.ledger import actor_for, balance, snapshot
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import make_pledges

KEY_128 = "k" * 128
KEY_129 = "k" * 129


def post(client: Any, path: str, body: dict[str, Any] | None, key: str) -> Any:
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


# --- one key, one request, whatever the endpoint ---------------------------------------------------------
@pytest.mark.django_db
def test_a_key_used_on_orders_is_409_on_transfers_and_moves_nothing():
    ps = make_pledges()
    _, other, _ = ps.ex.trader("Other")
    client = client_for(ps.borrower[2])
    order = {"account": ps.account.number, "asset": "CEA-2024", "side": "sell", "price": "80.00", "quantity": 10}
    transfer = {"source": ps.account.number, "destination": other.number, "asset": "CEA-2024", "quantity": 5}

    with clock.pinned(IN_SESSION):
        placed = post(client, "/api/v1/orders", order, key="shared-1")
        before = snapshot()
        moved = post(client, "/api/v1/transfers", transfer, key="shared-1")

    assert placed.status_code == 201
    assert error_of(moved) == (409, "idempotency_conflict")
    assert moved.json()["error"]["details"] == {"idempotency_key": "shared-1", "first_request": "POST /api/v1/orders"}
    assert snapshot() == before
    assert balance(other, ps.cea) == (0, 0)


@pytest.mark.django_db
def test_a_key_claimed_by_a_service_call_is_409_on_the_api():
    """A command's key (settle --key) and an API request's key are one store: the same key is one request."""
    ps = make_pledges()
    settlement_run(actor=ps.ex.market.registry_actor, idempotency_key="nightly-1")
    client = client_for(ps.ex.market.registry_actor)
    before = snapshot()

    response = post(client, "/api/v1/settlement/batches", None, key="nightly-1")

    assert error_of(response) == (409, "idempotency_conflict")
    assert response.json()["error"]["details"]["first_request"] == "CALL service:settlement_run"
    assert snapshot() == before
    assert SettlementBatch.objects.count() == 1


@pytest.mark.django_db
def test_a_service_replays_its_key_with_the_row_it_made():
    ps = make_pledges()
    first = settlement_run(actor=ps.ex.market.registry_actor, idempotency_key="nightly-1")
    again = settlement_run(actor=ps.ex.market.registry_actor, idempotency_key="nightly-1")

    assert again.pk == first.pk
    assert SettlementBatch.objects.count() == 1
    assert IdempotentRequest.objects.get().path == "service:settlement_run"


# --- the key's length -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_128_character_key_settles_and_replays():
    """Finding 13: the settlement store kept 100 characters, so a valid 128-character key was a 400."""
    ps = make_pledges()
    client = client_for(ps.ex.market.registry_actor)  # the registry settles

    first = post(client, "/api/v1/settlement/batches", None, key=KEY_128)
    again = post(client, "/api/v1/settlement/batches", None, key=KEY_128)

    assert first.status_code == 201, first.content
    assert (again.status_code, again.content, again[REPLAYED_HEADER]) == (201, first.content, "true")
    assert SettlementBatch.objects.count() == 1


def _keyed_routes() -> list[tuple[str, str]]:
    return sorted(
        (method, route)
        for (method, route), view in api_routes().items()
        if getattr(getattr(view, method.lower()), "idempotency", None)
    )


@pytest.mark.django_db
def test_a_129_character_key_is_the_same_400_on_every_keyed_endpoint():
    ps = make_pledges()
    clients = [client_for(actor) for actor in (ps.borrower[2], ps.bank[2], ps.ex.operator, ps.ex.market.registry_actor)]
    routes = _keyed_routes()
    assert len(routes) >= 40
    before = snapshot()
    requests_before = IdempotentRequest.objects.count()

    for method, route in routes:
        path = "/" + route.replace("<id:pk>", "1").replace("<id:year>", "2024").replace("<code:code>", "X")
        path = path.replace("<code:asset>", "CEA-2024").replace("<code:prefix>", "X").replace("<id:number>", "1")
        path = path.replace("<code:market>", ps.cea.market.code)
        answers = [post(client, path, {}, key=KEY_129) for client in clients]
        allowed = [a for a in answers if a.status_code != 403]  # the kinds the endpoint serves get this far
        assert allowed, (method, route)
        for answer in allowed:
            assert error_of(answer) == (400, "invalid"), (route, answer.content)
            assert answer.json()["error"]["details"] == {"Idempotency-Key": ["must be 1 to 128 printable characters"]}

    assert snapshot() == before
    assert IdempotentRequest.objects.count() == requests_before


# --- 8 clients, one key, at once: every keyed endpoint that moves value ----------------------------------
@dataclass
class Burst:
    token: str
    path: str
    body: dict[str, Any] | None
    effect: Callable[[], object]


def _transfer_burst(ps) -> Burst:
    _, other, _ = ps.ex.trader("Other")
    body = {"source": ps.account.number, "destination": other.number, "asset": "CEA-2024", "quantity": 5}
    return Burst(
        token_for(ps.borrower[2]),
        "/api/v1/transfers",
        body,
        lambda: (Transaction.objects.count(), balance(other, ps.cea), balance(ps.account, ps.cea)),
    )


def _pending_transfer_burst(ps) -> Burst:
    burst = _transfer_burst(ps)  # to an account not on the sender's trusted list: the transfer waits
    return Burst(
        burst.token,
        burst.path,
        burst.body,
        lambda: (PendingTransfer.objects.count(), balance(ps.account, ps.cea)),
    )


def _order_burst(ps) -> Burst:
    body = {"account": ps.account.number, "asset": "CEA-2024", "side": "sell", "price": "80.00", "quantity": 10}
    return Burst(
        token_for(ps.borrower[2]), "/api/v1/orders", body, lambda: (Order.objects.count(), balance(ps.account, ps.cea))
    )


def _settlement_burst(ps) -> Burst:
    buyer = ps.ex.trader("Buyer", cash_fen=10_000_000)
    ps.ex.order(ps.borrower[2], ps.account, "sell", 8000, 10)
    ps.ex.order(buyer[2], buyer[1], "buy", 8000, 10)
    return Burst(
        token_for(ps.ex.market.registry_actor),  # the registry settles (Decree 775 art. 5)
        "/api/v1/settlement/batches",
        None,
        lambda: (SettlementBatch.objects.count(), balance(buyer[1], ps.cea)),
    )


def _pledge_burst(ps) -> Burst:
    body = {
        "account": ps.account.number,
        "lender": ps.bank[0].pk,
        "asset": "CEA-2024",
        "quantity": 500,
        "principal": "24000.00",
        "annual_rate_bp": 385,
        "maturity": "2027-11-25",
        "ltv_limit_bp": 7000,
        "margin_call_bp": 8000,
        "liquidation_bp": 9000,
    }
    return Burst(token_for(ps.borrower[2]), "/api/v1/pledges", body, PledgeLoan.objects.count)


def _allocation_burst(ps) -> Burst:
    body = {"asset": "CEA-2024", "allocations": [{"account": ps.account.number, "quantity": 100}]}
    return Burst(
        token_for(ps.ex.market.registry_actor), "/api/v1/allocations", body, lambda: balance(ps.account, ps.cea)
    )


def _approval_burst(ps) -> Burst:
    registry = ps.ex.market.registry_actor
    approval = approval_request(
        actor=registry,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={"asset": "CEA-2024", "rows": [[ps.account.number, 40]], "memo": ""},
        quantity=40,
        summary="Allocate 40 t",
    )
    second = actor_for(ps.ex.market.registry)
    return Burst(
        token_for(second),
        f"/api/v1/approvals/{approval.pk}/approve",
        None,
        lambda: (ApprovalRequest.objects.get(pk=approval.pk).status, balance(ps.account, ps.cea)),
    )


def _deposit_burst(ps) -> Burst:
    body = {"account": ps.account.number, "amount": "100.00", "reference": "BANK-BURST"}
    return Burst(token_for(ps.ex.operator), "/api/v1/cash/deposits", body, lambda: balance(ps.account, ps.ex.cny))


def _withdrawal_burst(ps) -> Burst:
    ps.ex.deposit(ps.account, 1_000_000)
    body = {"account": ps.account.number, "amount": "100.00", "reference": "PAY-BURST"}
    return Burst(token_for(ps.ex.operator), "/api/v1/cash/withdrawals", body, lambda: balance(ps.account, ps.ex.cny))


BURSTS = {
    "transfer": _transfer_burst,
    "pending transfer": _pending_transfer_burst,
    "order": _order_burst,
    "settlement": _settlement_burst,
    "pledge": _pledge_burst,
    "allocation": _allocation_burst,
    "approval": _approval_burst,
    "deposit": _deposit_burst,
    "withdrawal": _withdrawal_burst,
}


@pytest.fixture
def trust(request):
    """The pending-transfer case turns the trusted list on (GREENLEDGER["TRUSTED_ACCOUNTS"])."""
    config = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": request.node.callspec.params["name"] == "pending transfer"}
    with override_settings(GREENLEDGER=config):
        yield


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(BURSTS))
def test_one_key_sent_by_8_clients_at_once_acts_once_and_answers_alike(name, trust):
    with clock.pinned(IN_SESSION):
        ps = make_pledges()
        burst = BURSTS[name](ps)
        before = burst.effect()

        responses = all_at_once(8, lambda c: post(c, burst.path, burst.body, key="burst-1"), token=burst.token)

        after = burst.effect()
    statuses = [r.status_code for r in responses]
    assert all(status < 500 for status in statuses), [r.content for r in responses]
    assert len(set(statuses)) == 1, [r.content for r in responses]
    assert 200 <= statuses[0] < 300, responses[0].content
    assert len({r.content for r in responses}) == 1
    assert sorted(r.get(REPLAYED_HEADER, "") for r in responses) == [""] + ["true"] * 7
    assert after != before
    assert IdempotentRequest.objects.filter(key="burst-1").count() == 1
    # Once: the same key again changes nothing more.
    with clock.pinned(IN_SESSION):
        again = post(client_for(token=burst.token), burst.path, burst.body, key="burst-1")
        assert burst.effect() == after
    assert (again.status_code, again.content) == (responses[0].status_code, responses[0].content)


@pytest.mark.django_db(transaction=True)
def test_a_twin_of_a_request_still_running_is_409_request_in_progress_with_retry_after(monkeypatch):
    """A twin waits for the first up to WAIT_SECONDS, then is told to come back, never a 5xx."""
    ps = make_pledges()
    registry = ps.ex.market.registry_actor  # the registry settles (Decree 775 art. 5)
    token = token_for(registry)
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.2)
    with transaction.atomic():
        # The first request: its claim is made and not yet committed.
        scope = f"participant:{registry.participant_id}"
        idempotency_claim(scope=scope, key="slow-1", method="POST", operation="/api/v1/settlement/batches", digest="x")
        [twin] = all_at_once(1, lambda c: post(c, "/api/v1/settlement/batches", None, key="slow-1"), token=token)
        connection.set_rollback(True)

    assert error_of(twin) == (409, RequestInProgress.code)
    assert twin["Retry-After"] == "1"
    assert SettlementBatch.objects.count() == 0


@pytest.mark.django_db
def test_a_keyed_take_back_that_is_refused_keeps_its_record_and_frees_its_key():
    """The refusal is recorded (committed) before it is raised; a keyed request keeps that, not the key."""
    from exchange.models import AllocationEntry
    from exchange.services.retirement import retirement_create
    from tests.helpers.compliance import make_cycle

    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng")
    registry = client_for(cycle.registry)
    url = f"/api/v1/compliance/obligations/{entity.obligation.pk}/true-up"
    assert post(registry, url, {"approved": 100}, key="t-1").status_code == 200
    retirement_create(
        actor=entity.actor, account=entity.account, asset=cycle.market.cea, quantity=95, beneficiary="B", reason="R"
    )

    refused = post(registry, url, {"approved": 80}, key="t-2")

    assert error_of(refused) == (409, "takeback_units_unavailable")
    assert list(AllocationEntry.objects.order_by("pk").values_list("outcome", "quantity", "shortfall")) == [
        ("applied", 100, 0),
        ("refused", 0, 15),
    ]
    assert not IdempotentRequest.objects.filter(key="t-2").exists()
    assert IdempotentRequest.objects.filter(key="t-1").exists()
