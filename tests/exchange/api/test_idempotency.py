"""The Idempotency-Key on every POST that changes something (docs/architecture.md, Idempotency; docs/api.md).

For each endpoint keyed by ``idempotent_request``: the same key with the same body answers with the same
status and bytes and changes nothing more (the whole database is compared); the same key with another
request is 409 ``idempotency_conflict`` and changes nothing. Then: refusals leave the key unused, keys
belong to the participant, 8 clients sending one key at once get one effect and one answer on every keyed
endpoint, and a walk over the URLs fails for a POST that is keyed neither way and not exempted below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.models import ApiToken, Participant, ParticipantKind
from accounts.services import api_token_create, participant_suspend
from accounts.validators import make_uscc
from core import clock
from exchange.api.idempotency import REPLAYED_HEADER
from exchange.models import (
    Account,
    AllocationDeduction,
    AllocationEntry,
    AllocationInput,
    AllocationRule,
    ApprovalOperation,
    ApprovalRequest,
    Asset,
    CarryoverRule,
    ComplianceYear,
    IdempotentRequest,
    Issuance,
    MarketRules,
    Obligation,
    OfficialPrice,
    Order,
    PendingTransfer,
    PledgeLoan,
    Project,
    Rulebook,
    SettlementBatch,
    Trade,
    TrustedAccount,
    VerifiedEmission,
    WebhookEndpoint,
)
from exchange.services.allocation import allocation_rule_set
from exchange.services.approvals import approval_request
from exchange.services.compliance import (
    compliance_deadlines_run,
    compliance_year_create,
    emissions_record,
    entities_cover,
)
from exchange.services.issuance import cea_vintage_create, project_register
from exchange.services.pledges import pledge_enforce
from exchange.services.pledges.compliance_release import pledge_compliance_release_request
from exchange.services.transfers import transfer_create
from exchange.services.trust import trusted_account_propose
from exchange.services.webhooks import webhook_endpoint_create, webhook_endpoint_disable
from tests.factories import IdempotentRequestFactory
from tests.helpers.api import all_at_once, api_routes, error_of, token_for
from tests.helpers.compliance import make_cycle
from tests.helpers.ledger import actor_for, balance
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = pytest.mark.django_db

KEY = "retry-7f3a"

# Changing POSTs (and PATCHes) keyed neither way, and why that is right.
EXEMPT = {
    ("POST", "api/v1/audit/seal"): "seals what has committed and is unsealed, so a retry seals nothing twice; "
    "inside a keyed transaction it would hold the writers' lock through the sealing",
    ("PATCH", "api/v1/market/listings/<code:asset>"): "sets the fields it names: repeating it changes nothing",
    ("PATCH", "api/v1/compliance/years/<id:year>"): "sets the fields it names: repeating it changes nothing",
}


# --- the cases ---------------------------------------------------------------------------------------------
@dataclass
class Case:
    """A keyed request, another request under the same key, and what the first one changes."""

    client: APIClient
    path: str
    body: dict[str, Any] | str | None
    effect: Callable[[], object]
    other_body: dict[str, Any] | str | None = None
    other_path: str | None = None
    at: datetime = field(default_factory=lambda: IN_SESSION)


def client_of(actor: Actor) -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=actor.user_id))
    return client


def _status(model: type, pk: int) -> str:
    return model.objects.get(pk=pk).status


def _registry():
    ps = make_pledges()
    return ps, ps.ex.market.registry_actor


def _participants_register(settings):
    _, registry = _registry()
    body = {"name": "Huadian Power", "kind": "compliance_entity", "uscc": make_uscc("91110000777777777")}
    return Case(
        client_of(registry),
        "/api/v1/participants",
        body,
        Participant.objects.count,
        other_body=body | {"name": "Datang Power"},
    )


def _participants_suspend(settings):
    ps, registry = _registry()
    pk = ps.borrower[0].pk
    return Case(
        client_of(registry),
        f"/api/v1/participants/{pk}/suspend",
        {"reason": "audit finding 12"},
        lambda: Participant.objects.get(pk=pk).status,
        other_body={"reason": "audit finding 13"},
    )


def _participants_reactivate(settings):
    ps, registry = _registry()
    pk = ps.borrower[0].pk
    participant_suspend(actor=registry, participant=ps.borrower[0], reason="audit")
    return Case(
        client_of(registry),
        f"/api/v1/participants/{pk}/reactivate",
        {"reason": "cleared"},
        lambda: Participant.objects.get(pk=pk).status,
        other_path=f"/api/v1/participants/{pk}/suspend",
        other_body={"reason": "cleared"},
    )


def _token_revoke(settings):
    ps, registry = _registry()
    borrower = get_user_model().objects.get(pk=ps.borrower[2].user_id)
    token, _ = api_token_create(actor=Actor.system("test"), user=borrower, name="leaked")
    return Case(
        client_of(registry),
        f"/api/v1/tokens/{token.prefix}/revoke",
        {"reason": "leaked"},
        lambda: ApiToken.objects.get(pk=token.pk).revoked_at,
        other_body={"reason": "another"},
    )


def _project_body(owner: Participant) -> dict[str, Any]:
    return {
        "code": "BJ-TZ-FOREST-009",
        "name": "Tongzhou forest",
        "project_type": "forestry",
        "methodology": "CCER-14-001-V01",
        "location": "Tongzhou",
        "owner": owner.pk,
        "crediting_start": "2020-01-01",
        "crediting_end": "2040-12-31",
    }


def _projects_register(settings):
    ps, registry = _registry()
    body = _project_body(ps.borrower[0])
    return Case(client_of(registry), "/api/v1/projects", body, Project.objects.count, other_body=body | {"name": "X"})


def _ccer_issue(settings):
    ps, registry = _registry()
    project = project_register(
        actor=registry,
        code="BJ-TZ-FOREST-009",
        name="Tongzhou forest",
        project_type="forestry",
        methodology="CCER-14-001-V01",
        location="Tongzhou",
        owner=ps.borrower[0],
        crediting_start=date(2020, 1, 1),
        crediting_end=date(2040, 12, 31),
    )
    body = {
        "vintage": 2023,
        "monitoring_start": "2021-01-01",
        "monitoring_end": "2023-12-31",
        "quantity": 5000,
        "external_reference": "CCER-ISS-2024-0001",
    }
    return Case(
        client_of(registry),
        f"/api/v1/projects/{project.code}/issuances",
        body,
        lambda: list(Issuance.objects.values_list("external_reference", "quantity")),
        # Before: the header was ignored, so this was a second issuance.
        other_body=body | {"external_reference": "CCER-ISS-2024-0002"},
    )


def _cea_vintage_create(settings):
    _, registry = _registry()
    return Case(
        client_of(registry),
        "/api/v1/assets/cea-vintages",
        {"vintage": 2025},
        Asset.objects.count,
        other_body={"vintage": 2026},
    )


def _approval(ps, registry: Actor, quantity: int = 40) -> ApprovalRequest:
    return approval_request(
        actor=registry,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={"asset": "CEA-2024", "rows": [[ps.account.number, quantity]], "idempotency_key": None, "memo": ""},
        quantity=quantity,
        summary=f"Allocate {quantity} t",
    )


def _approval_approve(settings):
    ps, registry = _registry()
    approval = _approval(ps, registry)
    second = actor_for(ps.ex.market.registry)
    return Case(
        client_of(second),
        f"/api/v1/approvals/{approval.pk}/approve",
        None,
        lambda: (_status(ApprovalRequest, approval.pk), balance(ps.account, ps.cea)),
        other_path=f"/api/v1/approvals/{approval.pk}/reject",
        other_body={"reason": "no"},
    )


def _approval_reject(settings):
    ps, registry = _registry()
    approval = _approval(ps, registry)
    second = actor_for(ps.ex.market.registry)
    return Case(
        client_of(second),
        f"/api/v1/approvals/{approval.pk}/reject",
        {"reason": "the figures are wrong"},
        lambda: _status(ApprovalRequest, approval.pk),
        other_body={"reason": "another reason"},
    )


def _account_open(settings):
    ps = make_pledges()
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/accounts",
        {"name": "Trading 2"},
        Account.objects.count,
        other_body={"name": "Trading 3"},
    )


def _pending_transfer_cancel(settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True}
    ps = make_pledges()
    _, broker_account, _ = ps.ex.trader("Broker")
    first, second = (
        transfer_create(
            actor=ps.borrower[2], source=ps.account, destination=broker_account, asset=ps.cea, quantity=quantity
        )
        for quantity in (10, 20)
    )
    assert isinstance(first, PendingTransfer)
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/transfers/pending/{first.pk}/cancel",
        None,
        lambda: (_status(PendingTransfer, first.pk), balance(ps.account, ps.cea)),
        other_path=f"/api/v1/transfers/pending/{second.pk}/cancel",
    )


def _trusted_propose(settings):
    ps = make_pledges()
    _, broker_account, _ = ps.ex.trader("Broker")
    body = {"account": broker_account.number, "label": "Broker"}
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/trusted-accounts",
        body,
        TrustedAccount.objects.count,
        other_body=body | {"label": "Our broker"},
    )


def _proposed_entry(ps) -> TrustedAccount:
    _, broker_account, _ = ps.ex.trader("Broker")
    return trusted_account_propose(actor=ps.borrower[2], account=broker_account, label="Broker")


def _trusted_approve(settings):
    ps = make_pledges()
    entry = _proposed_entry(ps)
    return Case(
        client_of(actor_for(ps.borrower[0])),  # a second admin
        f"/api/v1/trusted-accounts/{entry.pk}/approve",
        None,
        lambda: _status(TrustedAccount, entry.pk),
        other_path=f"/api/v1/trusted-accounts/{entry.pk}/remove",
    )


def _trusted_remove(settings):
    ps = make_pledges()
    entry = _proposed_entry(ps)
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/trusted-accounts/{entry.pk}/remove",
        None,
        lambda: _status(TrustedAccount, entry.pk),
        other_path=f"/api/v1/trusted-accounts/{entry.pk}/approve",
    )


def _market_list(settings):
    ps, registry = _registry()
    cea_vintage_create(actor=registry, vintage=2025)
    return Case(
        client_of(ps.ex.operator),
        "/api/v1/market/listings",
        {"asset": "CEA-2025", "reference_price": "80.00"},
        MarketRules.objects.count,
        other_body={"asset": "CEA-2025", "reference_price": "81.00"},
    )


def _cash_deposit(settings):
    ps = make_pledges()
    body = {"account": ps.account.number, "amount": "100.00", "reference": "BANK-2026-1"}
    return Case(
        client_of(ps.ex.operator),
        "/api/v1/cash/deposits",
        body,
        lambda: balance(ps.account, ps.ex.cny),
        # Before: the header was ignored and the other reference booked a second deposit.
        other_body=body | {"reference": "BANK-2026-2"},
    )


def _cash_withdraw(settings):
    ps = make_pledges()
    ps.ex.deposit(ps.account, 1_000_000)
    body = {"account": ps.account.number, "amount": "100.00", "reference": "PAY-2026-1"}
    return Case(
        client_of(ps.ex.operator),
        "/api/v1/cash/withdrawals",
        body,
        lambda: balance(ps.account, ps.ex.cny),
        other_body=body | {"reference": "PAY-2026-2"},
    )


def _order_place(settings):
    ps = make_pledges()
    body = {
        "account": ps.account.number,
        "asset": "CEA-2024",
        "side": "sell",
        "price": "80.00",
        "quantity": 10,
        "client_order_id": "c-1",
    }
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/orders",
        body,
        lambda: (Order.objects.count(), balance(ps.account, ps.cea)),
        # Before: the key only stood in for a missing client_order_id, so this placed a second order.
        other_body=body | {"client_order_id": "c-2"},
    )


def _order_cancel(settings):
    ps = make_pledges()
    with clock.pinned(IN_SESSION):
        first, second = (ps.ex.order(ps.borrower[2], ps.account, "sell", 8000, 10).order for _ in range(2))
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/orders/{first.pk}/cancel",
        None,
        lambda: (_status(Order, first.pk), balance(ps.account, ps.cea)),
        other_path=f"/api/v1/orders/{second.pk}/cancel",
    )


def _pledge_accept(settings):
    ps = make_pledges()
    loan = ps.request()
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/accept",
        {"terms_digest": loan.terms_digest},
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.account, ps.cea)),
        other_body={"terms_digest": loan.terms_digest, "lender_account": ps.bank_account.number},
    )


def _pledge_registration(settings):
    ps = make_pledges()
    loan = ps.applied()
    return Case(
        client_of(ps.ex.market.registry_actor),
        f"/api/v1/pledges/{loan.pk}/register",
        None,
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.account, ps.cea)),
        other_body={"note": "another body"},
    )


def _pledge_external_registration(settings):
    ps = make_pledges()
    loan = ps.registered()
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/external-registration",
        {"reference": "0456789"},
        lambda: PledgeLoan.objects.get(pk=loan.pk).external_registration_reference,
        other_body={"reference": "0456780"},
    )


def _pledge_reject(settings):
    ps = make_pledges()
    loan = ps.request()
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/reject",
        {"reason": "collateral too thin"},
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.account, ps.cea)),
        other_body={"reason": "another reason"},
    )


def _pledge_withdraw(settings):
    ps = make_pledges()
    first, second = ps.request(100), ps.request(200)
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/pledges/{first.pk}/withdraw",
        None,
        lambda: (_status(PledgeLoan, first.pk), balance(ps.account, ps.cea)),
        other_path=f"/api/v1/pledges/{second.pk}/withdraw",
    )


def _pledge_release(settings):
    ps = make_pledges()
    loan = ps.registered()
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/release",
        {"repayment_reference": "REPAY-1"},
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.account, ps.cea)),
        other_body={"repayment_reference": "REPAY-2"},
    )


def _pledge_default(settings):
    ps = make_pledges()
    with clock.pinned(at(DAY)):
        loan = ps.registered(maturity_date=DAY + timedelta(days=1))
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/default",
        None,
        lambda: _status(PledgeLoan, loan.pk),
        other_body={"note": "another body"},
        at=at(DAY + timedelta(days=2)),
    )


def _pledge_enforce(settings):
    ps = make_pledges()
    loan = ps.defaulted()
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/enforce",
        {"method": "agreement", "price": "80.00"},
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.bank_account, ps.cea), loan.enforcements.count()),
        other_body={"method": "sale", "price": "72.00"},
        at=at(DAY + timedelta(days=2)),
    )


def _pledge_proposed():
    ps = make_pledges()
    loan = ps.defaulted()
    with clock.pinned(at(DAY + timedelta(days=2))):
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)
    return ps, loan


def _pledge_enforce_agree(settings):
    ps, loan = _pledge_proposed()
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/pledges/{loan.pk}/enforce/agree",
        None,
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.bank_account, ps.cea), balance(ps.account, ps.cea)),
        other_body={"note": "another body"},
        at=at(DAY + timedelta(days=2)),
    )


def _pledge_enforce_decline(settings):
    ps, loan = _pledge_proposed()
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/pledges/{loan.pk}/enforce/decline",
        None,
        lambda: list(loan.enforcements.values_list("status", flat=True)),
        other_body={"note": "another body"},
        at=at(DAY + timedelta(days=2)),
    )


def _pledge_court_order(settings):
    ps = make_pledges()
    loan = ps.defaulted()
    order = {
        "court_reference": "(2026) Jing 0105 Min Chu 1",
        "document_sha256": "ab" * 32,
        "units_to_lender": 100,
        "price": "80.00",
    }
    return Case(
        client_of(ps.ex.market.registry_actor),
        f"/api/v1/pledges/{loan.pk}/court-order",
        order,
        lambda: (_status(PledgeLoan, loan.pk), balance(ps.bank_account, ps.cea)),
        other_body={**order, "units_to_lender": 200},
        at=at(DAY + timedelta(days=2)),
    )


def _pledge_for_compliance():
    ps = make_pledges()
    registry = ps.ex.market.registry_actor
    year = compliance_year_create(actor=registry, year=2024)
    [obligation] = entities_cover(actor=registry, year=year, entities=[ps.borrower[0]])
    emissions_record(actor=registry, obligation=obligation, quantity=600)
    return ps, ps.registered(500)


def _pledge_compliance_release(settings):
    ps, loan = _pledge_for_compliance()
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/pledges/{loan.pk}/compliance-release",
        {"quantity": 50, "year": 2024},
        lambda: list(loan.compliance_releases.values_list("quantity", "status")),
        other_body={"quantity": 60, "year": 2024},
    )


def _pledge_compliance_decide(settings):
    ps, loan = _pledge_for_compliance()
    pledge_compliance_release_request(actor=ps.borrower[2], loan=loan, quantity=50, year=2024)
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/compliance-release/decide",
        {"consent": True},
        lambda: (balance(ps.account, ps.cea), list(loan.compliance_releases.values_list("status", flat=True))),
        other_body={"consent": False},
    )


def _compliance_year_create(settings):
    cycle = make_cycle(2024)
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/years",
        {"year": 2025},
        ComplianceYear.objects.count,
        other_body={"year": 2026},
    )


def _compliance_cover(settings):
    cycle = make_cycle(2024)
    first, second = cycle.market.holder("Jingneng")[0], cycle.market.holder("Shougang")[0]
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/years/2024/entities",
        {"entities": [first.pk]},
        Obligation.objects.count,
        other_body={"entities": [second.pk]},
    )


def _compliance_preallocation(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng", emissions=1000)
    year = compliance_year_create(actor=cycle.registry, year=2025)
    entities_cover(actor=cycle.registry, year=year, entities=[entity.participant])
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/years/2025/preallocation",
        None,
        AllocationEntry.objects.count,  # a second run without the key answers "allocated_already"
        other_path="/api/v1/compliance/years/2024/preallocation",
    )


def _compliance_assess(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng", emissions=10)
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/years/2024/assessment",
        None,
        lambda: (Obligation.objects.get(pk=entity.obligation.pk).status, ComplianceYear.objects.get(pk=2024).closed_at),
        other_body={"note": "another body"},
    )


def _compliance_emissions(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng")
    body = {"entity": entity.participant.pk, "year": 2024, "quantity": 1200, "report_reference": "VR-1"}
    return Case(
        client_of(cycle.verifier),
        "/api/v1/compliance/emissions",
        body,
        VerifiedEmission.objects.count,
        other_body=body | {"quantity": 1180},
    )


# --- the endpoints whose services kept keys of their own before (journal, pledges, settlement, ...) ---------
def _transfer_body(ps, destination: Account, quantity: int = 5) -> dict[str, Any]:
    return {"source": ps.account.number, "destination": destination.number, "asset": "CEA-2024", "quantity": quantity}


def _transfers(settings):
    ps = make_pledges()
    _, other, _ = ps.ex.trader("Other")
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/transfers",
        _transfer_body(ps, other),
        lambda: (balance(ps.account, ps.cea), balance(other, ps.cea)),
        # Before: transfers and orders kept keys in different stores, so another endpoint under the key acted.
        other_path="/api/v1/orders",
        other_body={"account": ps.account.number, "asset": "CEA-2024", "side": "sell", "price": "80.00", "quantity": 1},
    )


def _transfers_batch(settings):
    ps = make_pledges()
    _, other, _ = ps.ex.trader("Other")
    item = {"source": ps.account.number, "destination": other.number, "asset": "CEA-2024", "quantity": 5}
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/transfers/batch",
        {"transfers": [item]},
        lambda: balance(other, ps.cea),
        other_body={"transfers": [item | {"quantity": 6}]},
    )


def _retirements(settings):
    ps = make_pledges()
    body = {"account": ps.account.number, "asset": "CEA-2024", "quantity": 25, "beneficiary": "B", "reason": "R"}
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/retirements",
        body,
        lambda: balance(ps.account, ps.cea),
        other_body=body | {"quantity": 26},
    )


def _cancellations(settings):
    ps, registry = _registry()
    body = {"account": ps.account.number, "asset": "CEA-2024", "quantity": 10, "reason": "Over-allocation"}
    return Case(
        client_of(registry),
        "/api/v1/cancellations",
        body,
        lambda: balance(ps.account, ps.cea),
        other_body=body | {"quantity": 11},
    )


def _allocations(settings):
    ps, registry = _registry()
    body = {"asset": "CEA-2024", "allocations": [{"account": ps.account.number, "quantity": 100}]}
    return Case(
        client_of(registry),
        "/api/v1/allocations",
        body,
        lambda: balance(ps.account, ps.cea),
        other_body={"asset": "CEA-2024", "allocations": [{"account": ps.account.number, "quantity": 101}]},
    )


def _allocations_csv(settings):
    ps, registry = _registry()
    client = client_of(registry)
    return Case(
        client,
        "/api/v1/allocations/csv?asset=CEA-2024",
        f"{ps.account.number},100\n",
        lambda: balance(ps.account, ps.cea),
        other_body=f"{ps.account.number},101\n",
    )


def _pledges(settings):
    ps = make_pledges()
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
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/pledges",
        body,
        PledgeLoan.objects.count,
        other_body=body | {"quantity": 400},
    )


def _amendment_requested(ps, loan):
    from exchange.services.pledges.amendments import pledge_amendment_request

    return pledge_amendment_request(actor=ps.borrower[2], loan=loan, kind="top_up", quantity=100)


def _amendment_applied(ps, loan):
    from exchange.services.pledges.amendments import pledge_amendment_confirm

    amendment = _amendment_requested(ps, loan)
    return pledge_amendment_confirm(actor=ps.bank[2], amendment=amendment, terms_digest=amendment.terms_digest)


def _amendment_state(loan):
    return lambda: (
        PledgeLoan.objects.get(pk=loan.pk).quantity,
        list(loan.amendments.values_list("kind", "quantity", "status")),
    )


def _pledge_amend(settings):
    ps = make_pledges()
    loan = ps.registered()
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/pledges/{loan.pk}/amendments",
        {"kind": "top_up", "quantity": 100},
        _amendment_state(loan),
        other_body={"kind": "top_up", "quantity": 101},
    )


def _pledge_amendment_confirm(settings):
    ps = make_pledges()
    loan = ps.registered()
    amendment = _amendment_requested(ps, loan)
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/amendments/{amendment.pk}/confirm",
        {"terms_digest": amendment.terms_digest},
        _amendment_state(loan),
        other_body={"terms_digest": "0" * 64},
    )


def _pledge_amendment_register(settings):
    ps = make_pledges()
    loan = ps.registered()
    amendment = _amendment_applied(ps, loan)
    return Case(
        client_of(ps.ex.market.registry_actor),
        f"/api/v1/pledges/{loan.pk}/amendments/{amendment.pk}/register",
        None,
        lambda: (_amendment_state(loan)(), balance(ps.account, ps.cea)),
        other_path=f"/api/v1/pledges/{loan.pk}/amendments/{amendment.pk}/reject",
    )


def _pledge_amendment_reject(settings):
    ps = make_pledges()
    loan = ps.registered()
    amendment = _amendment_requested(ps, loan)
    return Case(
        client_of(ps.bank[2]),
        f"/api/v1/pledges/{loan.pk}/amendments/{amendment.pk}/reject",
        {"reason": "No."},
        _amendment_state(loan),
        other_body={"reason": "Not now."},
    )


def _settlement(settings):
    ps = make_pledges()
    return Case(
        client_of(ps.ex.market.registry_actor),  # the registry settles (Decree 775 art. 5)
        "/api/v1/settlement/batches",
        None,
        SettlementBatch.objects.count,
        other_path="/api/v1/compliance/emissions",
        other_body={},
    )


# --- the trading modes on the national market (tests/exchange/services/test_agreements.py's world) ----------
def _national():
    from tests.exchange.services.test_agreements import National

    nat = National()
    seller = nat.trader("Seller", units=300_000)
    buyer = nat.trader("Buyer", cash_fen=10**10)
    return nat, seller, buyer


def _trades() -> int:
    return Trade.objects.count()


def _orders() -> list[tuple[int, str, int]]:
    return list(Order.objects.order_by("pk").values_list("pk", "status", "filled"))


def _listing_post(settings):
    nat, (_, acc, actor), _ = _national()
    body = {"account": acc.number, "asset": nat.cea.code, "side": "sell", "price": "80.00", "quantity": 10}
    return Case(client_of(actor), "/api/v1/listings", body, _orders, other_body={**body, "quantity": 11})


def _a_listing(nat, seller):
    from exchange.services.agreements import listing_post

    _, acc, actor = seller
    return listing_post(
        actor=actor, account=acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="L1"
    )


def _listing_pick(settings):
    nat, seller, (_, acc, actor) = _national()
    listing = _a_listing(nat, seller)
    return Case(
        client_of(actor),
        f"/api/v1/listings/{listing.pk}/pick",
        {"account": acc.number, "quantity": 10},
        _trades,
        other_body={"account": acc.number, "quantity": 11},
    )


def _listing_pick_level(settings):
    nat, seller, (_, acc, actor) = _national()
    _a_listing(nat, seller)
    body = {"account": acc.number, "asset": nat.cea.code, "side": "sell", "price": "80.00", "quantity": 10}
    return Case(client_of(actor), "/api/v1/listings/pick", body, _trades, other_body={**body, "quantity": 11})


BLOCK_TIME = datetime(2026, 11, 25, 13, 30, tzinfo=clock.MARKET_TZ)


def _block_offer_case(settings):
    nat, (_, acc, actor), (buyer, _, _) = _national()
    body = {
        "account": acc.number,
        "asset": nat.cea.code,
        "side": "sell",
        "price": "80.00",
        "quantity": 100_000,
        "counterparty": buyer.pk,
    }
    return Case(client_of(actor), "/api/v1/blocks", body, _orders, other_body={**body, "price": "81.00"}, at=BLOCK_TIME)


def _an_offer(nat, seller, buyer):
    from exchange.services.agreements import block_offer

    _, acc, actor = seller
    with clock.pinned(BLOCK_TIME):
        return block_offer(
            actor=actor,
            account=acc,
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=100_000,
            counterparty=buyer[0],
            client_order_id="B1",
        )


def _block_accept(settings):
    nat, seller, buyer = _national()
    offer = _an_offer(nat, seller, buyer)
    return Case(
        client_of(buyer[2]),
        f"/api/v1/blocks/{offer.pk}/accept",
        {"account": buyer[1].number},
        _trades,
        other_body={"account": buyer[1].number, "client_order_id": "other"},
        at=BLOCK_TIME,
    )


def _block_decline(settings):
    nat, seller, buyer = _national()
    offer = _an_offer(nat, seller, buyer)
    return Case(
        client_of(buyer[2]),
        f"/api/v1/blocks/{offer.pk}/decline",
        None,
        _orders,
        other_path="/api/v1/blocks",
        other_body={},
        at=BLOCK_TIME,
    )


def _block_counter(settings):
    nat, seller, buyer = _national()
    offer = _an_offer(nat, seller, buyer)
    return Case(
        client_of(buyer[2]),
        f"/api/v1/blocks/{offer.pk}/counter",
        {"account": buyer[1].number, "price": "79.00"},
        _orders,
        other_body={"account": buyer[1].number, "price": "78.00"},
        at=BLOCK_TIME,
    )


AUCTION_OPENS = datetime(2026, 11, 25, 10, 0, tzinfo=clock.MARKET_TZ)
AUCTION_CLOSES = datetime(2026, 11, 25, 11, 0, tzinfo=clock.MARKET_TZ)


def _auction_announce_case(settings):
    nat, (_, acc, actor), _ = _national()
    body = {
        "account": acc.number,
        "asset": nat.cea.code,
        "quantity": 1000,
        "reserve_price": "75.00",
        "opens_at": AUCTION_OPENS.isoformat(),
        "closes_at": AUCTION_CLOSES.isoformat(),
    }
    return Case(client_of(actor), "/api/v1/auctions", body, _orders, other_body={**body, "quantity": 1001})


def _an_auction(nat, seller):
    from exchange.services.auctions import auction_announce

    _, acc, actor = seller
    with clock.pinned(AUCTION_OPENS.replace(hour=9, minute=40)):
        return auction_announce(
            actor=actor,
            account=acc,
            asset=nat.cea,
            quantity=1000,
            reserve_price_fen=7500,
            opens_at=AUCTION_OPENS,
            closes_at=AUCTION_CLOSES,
            client_order_id="A1",
        )


def _auction_bid(settings):
    nat, seller, buyer = _national()
    auction = _an_auction(nat, seller)
    body = {"account": buyer[1].number, "price": "76.00", "quantity": 10}
    return Case(
        client_of(buyer[2]),
        f"/api/v1/auctions/{auction.pk}/bids",
        body,
        _orders,
        other_body={**body, "quantity": 11},
        at=AUCTION_OPENS.replace(minute=30),
    )


def _auction_close(settings):
    nat, seller, _ = _national()
    auction = _an_auction(nat, seller)
    return Case(
        client_of(seller[2]),
        f"/api/v1/auctions/{auction.pk}/close",
        None,
        _orders,
        other_path="/api/v1/blocks",
        other_body={},
        at=AUCTION_CLOSES,
    )


def _true_up(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng")
    return Case(
        client_of(cycle.registry),
        f"/api/v1/compliance/obligations/{entity.obligation.pk}/true-up",
        {"approved": 100},
        lambda: balance(entity.account, cycle.market.cea),
        other_body={"approved": 101},
    )


def _surrender(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.market.give(entity.account, 100)
    body = {"account": entity.account.number, "year": 2024, "items": [{"asset": "CEA-2024", "quantity": 60}]}
    return Case(
        client_of(entity.actor),
        "/api/v1/compliance/surrenders",
        body,
        lambda: balance(entity.account, cycle.market.cea),
        other_body=body | {"items": [{"asset": "CEA-2024", "quantity": 61}]},
    )


def _allocation_rule(settings):
    cycle = make_cycle(2024)
    body = {
        "year": 2024,
        "sector": "cement",
        "stage": "final",
        "method": "verified_emissions",
        "effective_from": "2025-03-01",
        "source": "2024 plan",
    }
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/allocation-rules",
        body,
        AllocationRule.objects.count,
        other_body=body | {"share_bp": 9000},
    )


def _allocation_input(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Huaneng")
    return Case(
        client_of(cycle.registry),
        f"/api/v1/compliance/obligations/{entity.obligation.pk}/allocation-input",
        {"output": 1000, "factors": {"cooling": "0.99"}},
        AllocationInput.objects.count,
        other_body={"output": 1001},
    )


def _final_allocation(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Shougang", emissions=500)
    allocation_rule_set(
        actor=cycle.registry,
        year=2024,
        sector="",
        stage="final",
        method="verified_emissions",
        effective_from=date(2025, 1, 1),
        source="2024 plan",
    )
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/years/2024/allocation",
        None,
        lambda: balance(entity.account, cycle.market.cea),
        other_body={"note": "another body"},
    )


def _deduction(settings):
    cycle = make_cycle(2023)
    entity = cycle.entity("Short Co.", emissions=50)
    compliance_deadlines_run(today=date(2025, 1, 1))
    return Case(
        client_of(cycle.registry),
        f"/api/v1/compliance/obligations/{entity.obligation.pk}/deduction",
        {"quantity": 50},
        AllocationDeduction.objects.count,
        other_body={"quantity": 49},
    )


def _determination(settings):
    cycle = make_cycle(2024)
    entity = cycle.entity("Silent Co.")
    return Case(
        client_of(cycle.registry),
        f"/api/v1/compliance/obligations/{entity.obligation.pk}/determination",
        {"quantity": 900, "basis": "capacity x hours"},
        VerifiedEmission.objects.count,
        other_body={"quantity": 901, "basis": "capacity x hours"},
    )


def _carryover_rule(settings):
    cycle = make_cycle(2024)
    body = {
        "year": 2024,
        "first_vintage": 2019,
        "base_tonnes": 10000,
        "net_sales_multiple_bp": 15000,
        "sales_from": "2024-01-01",
        "sales_to": "2025-12-31",
        "effective_from": "2024-10-01",
        "source": "2023-2024 plan",
    }
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/carryover-rules",
        body,
        CarryoverRule.objects.count,
        other_body=body | {"base_tonnes": 10001},
    )


def _official_price(settings):
    cycle = make_cycle(2024)
    body = {"market": "CN-ETS", "month": "2025-12-01", "price": "98.12", "source": "notice"}
    return Case(
        client_of(cycle.registry),
        "/api/v1/compliance/prices",
        body,
        OfficialPrice.objects.count,
        other_body=body | {"price": "98.13"},
    )


def _webhook_create(settings):
    ps = make_pledges()
    body = {"url": "https://hooks.example.com/a", "types": ["order.filled"]}
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/webhooks",
        body,
        WebhookEndpoint.objects.count,
        other_body=body | {"url": "https://hooks.example.com/b"},
    )


def _endpoint(ps, *, disabled: bool = False) -> WebhookEndpoint:
    endpoint = webhook_endpoint_create(actor=ps.borrower[2], url="https://hooks.example.com/a", types=[])
    return webhook_endpoint_disable(actor=ps.borrower[2], endpoint_id=endpoint.pk) if disabled else endpoint


def _webhook_disable(settings):
    ps = make_pledges()
    endpoint = _endpoint(ps)
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/webhooks/{endpoint.pk}/disable",
        None,
        lambda: _status(WebhookEndpoint, endpoint.pk),
        other_path=f"/api/v1/webhooks/{endpoint.pk}/enable",
    )


def _webhook_enable(settings):
    ps = make_pledges()
    endpoint = _endpoint(ps, disabled=True)
    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/webhooks/{endpoint.pk}/enable",
        None,
        lambda: _status(WebhookEndpoint, endpoint.pk),
        other_path=f"/api/v1/webhooks/{endpoint.pk}/disable",
    )


def _rulebook_publish(settings):
    ps, registry = _registry()
    market = ps.ex.cea.market
    body = {
        "effective_from": (IN_SESSION.date() + timedelta(days=7)).isoformat(),
        "changes": {"position_limit_t": 500_000},
    }
    return Case(
        client_of(registry),
        f"/api/v1/markets/{market.code}/rulebooks",
        body,
        Rulebook.objects.filter(market=market).count,
        other_body=body | {"changes": {"position_limit_t": 400_000}},
    )


# --- China's registry rules ------------------------------------------------------------------------------
SHA = "e" * 64
AFTER_PUBLICITY = datetime(2027, 1, 5, 10, tzinfo=clock.MARKET_TZ)  # the windows opened on IN_SESSION's day end before


def _frozen(ps):
    from exchange.services.freezes import judicial_freeze_create

    return judicial_freeze_create(
        actor=ps.ex.market.registry_actor,
        account=ps.borrower[1],
        asset=ps.ex.cea,
        court="Court",
        document_number="F-1",
        document_sha256=SHA,
        quantity=10,
    )


def _freeze_create(settings):
    ps, registry = _registry()
    body = {
        "account": ps.borrower[1].number,
        "asset": ps.ex.cea.code,
        "court": "Court",
        "document_number": "F-1",
        "document_sha256": SHA,
        "quantity": 10,
    }
    from exchange.models import JudicialFreeze

    return Case(
        client_of(registry), "/api/v1/freezes", body, JudicialFreeze.objects.count, other_body=body | {"quantity": 11}
    )


def _freeze_release(settings):
    ps, registry = _registry()
    freeze = _frozen(ps)
    from exchange.models import JudicialFreeze

    body = {"document_number": "R-1", "document_sha256": SHA}
    return Case(
        client_of(registry),
        f"/api/v1/freezes/{freeze.pk}/release",
        body,
        lambda: _status(JudicialFreeze, freeze.pk),
        other_body=body | {"document_number": "R-2"},
    )


def _freeze_seize(settings):
    ps, registry = _registry()
    freeze = _frozen(ps)
    from exchange.models import JudicialFreeze

    body = {"document_number": "S-1", "document_sha256": SHA, "destination": ps.bank[1].number}
    return Case(
        client_of(registry),
        f"/api/v1/freezes/{freeze.pk}/seize",
        body,
        lambda: _status(JudicialFreeze, freeze.pk),
        other_body=body | {"document_number": "S-2"},
    )


def _non_trade_applied(ps):
    from exchange.services.nontrade import non_trade_transfer_apply

    return non_trade_transfer_apply(
        actor=ps.borrower[2],
        source=ps.borrower[1],
        destination=ps.bank[1],
        asset=ps.ex.cea,
        quantity=5,
        legal_basis="merger_split",
        document_sha256=SHA,
    )


def _non_trade_apply(settings):
    ps = make_pledges()
    from exchange.models import NonTradeTransfer

    body = {
        "source": ps.borrower[1].number,
        "destination": ps.bank[1].number,
        "asset": ps.ex.cea.code,
        "quantity": 5,
        "legal_basis": "inheritance",
        "document_sha256": SHA,
    }
    return Case(
        client_of(ps.borrower[2]),
        "/api/v1/non-trade-transfers",
        body,
        NonTradeTransfer.objects.count,
        other_body=body | {"quantity": 6},
    )


def _non_trade_review(settings):
    ps, registry = _registry()
    transfer = _non_trade_applied(ps)
    from exchange.models import NonTradeTransfer

    return Case(
        client_of(registry),
        f"/api/v1/non-trade-transfers/{transfer.pk}/review",
        {"note": "complete"},
        lambda: _status(NonTradeTransfer, transfer.pk),
        other_body={"note": "other"},
    )


def _non_trade_reject(settings):
    ps, registry = _registry()
    transfer = _non_trade_applied(ps)
    from exchange.models import NonTradeTransfer

    return Case(
        client_of(registry),
        f"/api/v1/non-trade-transfers/{transfer.pk}/reject",
        {"reason": "no document"},
        lambda: _status(NonTradeTransfer, transfer.pk),
        other_body={"reason": "other"},
    )


APPLICATION = {
    "code": "AFF-IDEM",
    "name": "Forest",
    "project_type": "forestry",
    "methodology": "CCER-14-001-V01",
    "location": "Hebei",
    "start_date": "2021-03-01",
    "crediting_start": "2021-03-01",
    "crediting_end": "2051-02-28",
    "validation_body": "CEC",
    "validation_report_sha256": SHA,
}


def _ccer_world():
    from exchange.services.calendar import calendar_year_load
    from exchange.services.ccer import ccer_reference_seed

    ps, registry = _registry()
    ccer_reference_seed(actor=registry)
    calendar_year_load(actor=registry, code="CN", year=2026)
    owner = ps.ex.trader("Forest owner", kind=ParticipantKind.PROJECT_OWNER)
    return ps, registry, owner


def _application(owner, *, published: bool = False, registry=None):
    from exchange.services.ccer import ccer_application_submit, ccer_publicity_open

    fields = {k: v for k, v in APPLICATION.items()}
    for name in ("start_date", "crediting_start", "crediting_end"):
        fields[name] = date.fromisoformat(fields[name])
    application = ccer_application_submit(actor=owner[2], owner=owner[0], **fields)
    return ccer_publicity_open(actor=registry, target=application) if published else application


def _ccer_apply(settings):
    _, _, owner = _ccer_world()
    from exchange.models import ProjectApplication

    return Case(
        client_of(owner[2]),
        "/api/v1/ccer/applications",
        APPLICATION,
        ProjectApplication.objects.count,
        other_body=APPLICATION | {"name": "Other"},
    )


def _ccer_publicity(settings):
    _, registry, owner = _ccer_world()
    application = _application(owner)
    from exchange.models import ProjectApplication

    return Case(
        client_of(registry),
        f"/api/v1/ccer/applications/{application.pk}/publicity",
        None,
        lambda: _status(ProjectApplication, application.pk),
        other_path=f"/api/v1/ccer/applications/{application.pk}/comments",
    )


def _ccer_comment(settings):
    ps, registry, owner = _ccer_world()
    application = _application(owner, published=True, registry=registry)
    from exchange.models import PublicComment

    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/ccer/applications/{application.pk}/comments",
        {"text": "A comment."},
        PublicComment.objects.count,
        other_body={"text": "Another."},
    )


def _ccer_decide(settings):
    _, registry, owner = _ccer_world()
    application = _application(owner, published=True, registry=registry)
    from exchange.models import ProjectApplication

    return Case(
        client_of(registry),
        f"/api/v1/ccer/applications/{application.pk}/decision",
        {"approve": False, "reason": "Not additional."},
        lambda: _status(ProjectApplication, application.pk),
        other_body={"approve": False, "reason": "Other."},
        at=AFTER_PUBLICITY,
    )


def _registered_project(registry, owner):
    from exchange.services.ccer import ccer_application_decide

    application = _application(owner, published=True, registry=registry)
    return ccer_application_decide(
        actor=registry, application=application, register=True, today=date(2027, 1, 4)
    ).project


CLAIM = {
    "project": "AFF-IDEM",
    "vintage": 2025,
    "monitoring_start": "2025-01-01",
    "monitoring_end": "2025-12-31",
    "quantity": 10,
    "verification_body": "CQC",
    "verification_report_sha256": SHA,
}


def _claim(registry, owner, *, published: bool = False):
    from exchange.services.ccer import ccer_publicity_open, reduction_claim_submit

    claim = reduction_claim_submit(
        actor=owner[2],
        project=_registered_project(registry, owner),
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=10,
        verification_body="CQC",
        verification_report_sha256=SHA,
    )
    return ccer_publicity_open(actor=registry, target=claim) if published else claim


def _claim_submit(settings):
    _, registry, owner = _ccer_world()
    _registered_project(registry, owner)
    from exchange.models import ReductionClaim

    return Case(
        client_of(owner[2]),
        "/api/v1/ccer/claims",
        CLAIM,
        ReductionClaim.objects.count,
        other_body=CLAIM | {"quantity": 9},
    )


def _claim_publicity(settings):
    _, registry, owner = _ccer_world()
    claim = _claim(registry, owner)
    from exchange.models import ReductionClaim

    return Case(
        client_of(registry),
        f"/api/v1/ccer/claims/{claim.pk}/publicity",
        None,
        lambda: _status(ReductionClaim, claim.pk),
        other_path=f"/api/v1/ccer/claims/{claim.pk}/comments",
    )


def _claim_comment(settings):
    ps, registry, owner = _ccer_world()
    claim = _claim(registry, owner, published=True)
    from exchange.models import PublicComment

    return Case(
        client_of(ps.borrower[2]),
        f"/api/v1/ccer/claims/{claim.pk}/comments",
        {"text": "A comment."},
        PublicComment.objects.count,
        other_body={"text": "Another."},
    )


def _claim_decide(settings):
    _, registry, owner = _ccer_world()
    claim = _claim(registry, owner, published=True)
    from exchange.models import ReductionClaim

    return Case(
        client_of(registry),
        f"/api/v1/ccer/claims/{claim.pk}/decision",
        {"approve": False, "reason": "Report incomplete."},
        lambda: _status(ReductionClaim, claim.pk),
        other_body={"approve": False, "reason": "Other."},
        at=AFTER_PUBLICITY,
    )


CASES: dict[str, Callable[[Any], Case]] = {
    "api/v1/participants": _participants_register,
    "api/v1/participants/<id:pk>/suspend": _participants_suspend,
    "api/v1/participants/<id:pk>/reactivate": _participants_reactivate,
    "api/v1/tokens/<code:prefix>/revoke": _token_revoke,
    "api/v1/projects": _projects_register,
    "api/v1/projects/<code:code>/issuances": _ccer_issue,
    "api/v1/assets/cea-vintages": _cea_vintage_create,
    "api/v1/approvals/<id:pk>/approve": _approval_approve,
    "api/v1/approvals/<id:pk>/reject": _approval_reject,
    "api/v1/accounts": _account_open,
    "api/v1/transfers/pending/<id:pk>/cancel": _pending_transfer_cancel,
    "api/v1/trusted-accounts": _trusted_propose,
    "api/v1/trusted-accounts/<id:pk>/approve": _trusted_approve,
    "api/v1/trusted-accounts/<id:pk>/remove": _trusted_remove,
    "api/v1/market/listings": _market_list,
    "api/v1/cash/deposits": _cash_deposit,
    "api/v1/cash/withdrawals": _cash_withdraw,
    "api/v1/orders": _order_place,
    "api/v1/orders/<id:pk>/cancel": _order_cancel,
    "api/v1/pledges/<id:pk>/accept": _pledge_accept,
    "api/v1/pledges/<id:pk>/register": _pledge_registration,
    "api/v1/pledges/<id:pk>/external-registration": _pledge_external_registration,
    "api/v1/pledges/<id:pk>/reject": _pledge_reject,
    "api/v1/pledges/<id:pk>/withdraw": _pledge_withdraw,
    "api/v1/pledges/<id:pk>/release": _pledge_release,
    "api/v1/pledges/<id:pk>/default": _pledge_default,
    "api/v1/pledges/<id:pk>/enforce": _pledge_enforce,
    "api/v1/pledges/<id:pk>/enforce/agree": _pledge_enforce_agree,
    "api/v1/pledges/<id:pk>/enforce/decline": _pledge_enforce_decline,
    "api/v1/pledges/<id:pk>/court-order": _pledge_court_order,
    "api/v1/pledges/<id:pk>/compliance-release": _pledge_compliance_release,
    "api/v1/pledges/<id:pk>/compliance-release/decide": _pledge_compliance_decide,
    "api/v1/compliance/years": _compliance_year_create,
    "api/v1/compliance/years/<id:year>/entities": _compliance_cover,
    "api/v1/compliance/years/<id:year>/preallocation": _compliance_preallocation,
    "api/v1/compliance/years/<id:year>/assessment": _compliance_assess,
    "api/v1/compliance/emissions": _compliance_emissions,
    "api/v1/transfers": _transfers,
    "api/v1/transfers/batch": _transfers_batch,
    "api/v1/retirements": _retirements,
    "api/v1/cancellations": _cancellations,
    "api/v1/allocations": _allocations,
    "api/v1/allocations/csv": _allocations_csv,
    "api/v1/pledges": _pledges,
    "api/v1/pledges/<id:pk>/amendments": _pledge_amend,
    "api/v1/pledges/<id:pk>/amendments/<id:number>/confirm": _pledge_amendment_confirm,
    "api/v1/pledges/<id:pk>/amendments/<id:number>/register": _pledge_amendment_register,
    "api/v1/pledges/<id:pk>/amendments/<id:number>/reject": _pledge_amendment_reject,
    "api/v1/settlement/batches": _settlement,
    "api/v1/listings": _listing_post,
    "api/v1/listings/pick": _listing_pick_level,
    "api/v1/listings/<id:pk>/pick": _listing_pick,
    "api/v1/blocks": _block_offer_case,
    "api/v1/blocks/<id:pk>/accept": _block_accept,
    "api/v1/blocks/<id:pk>/decline": _block_decline,
    "api/v1/blocks/<id:pk>/counter": _block_counter,
    "api/v1/auctions": _auction_announce_case,
    "api/v1/auctions/<id:pk>/bids": _auction_bid,
    "api/v1/auctions/<id:pk>/close": _auction_close,
    "api/v1/compliance/obligations/<id:pk>/true-up": _true_up,
    "api/v1/compliance/surrenders": _surrender,
    "api/v1/compliance/allocation-rules": _allocation_rule,
    "api/v1/compliance/obligations/<id:pk>/allocation-input": _allocation_input,
    "api/v1/compliance/years/<id:year>/allocation": _final_allocation,
    "api/v1/compliance/obligations/<id:pk>/deduction": _deduction,
    "api/v1/compliance/obligations/<id:pk>/determination": _determination,
    "api/v1/compliance/carryover-rules": _carryover_rule,
    "api/v1/compliance/prices": _official_price,
    "api/v1/markets/<code:market>/rulebooks": _rulebook_publish,
    "api/v1/webhooks": _webhook_create,
    "api/v1/webhooks/<id:pk>/disable": _webhook_disable,
    "api/v1/webhooks/<id:pk>/enable": _webhook_enable,
    "api/v1/freezes": _freeze_create,
    "api/v1/freezes/<id:pk>/release": _freeze_release,
    "api/v1/freezes/<id:pk>/seize": _freeze_seize,
    "api/v1/non-trade-transfers": _non_trade_apply,
    "api/v1/non-trade-transfers/<id:pk>/review": _non_trade_review,
    "api/v1/non-trade-transfers/<id:pk>/reject": _non_trade_reject,
    "api/v1/ccer/applications": _ccer_apply,
    "api/v1/ccer/applications/<id:pk>/publicity": _ccer_publicity,
    "api/v1/ccer/applications/<id:pk>/comments": _ccer_comment,
    "api/v1/ccer/applications/<id:pk>/decision": _ccer_decide,
    "api/v1/ccer/claims": _claim_submit,
    "api/v1/ccer/claims/<id:pk>/publicity": _claim_publicity,
    "api/v1/ccer/claims/<id:pk>/comments": _claim_comment,
    "api/v1/ccer/claims/<id:pk>/decision": _claim_decide,
}


def database() -> dict[str, list[str]]:
    """Every row of every table the API can change, as text: a replay or a refusal must leave all of it."""
    return {
        model._meta.label: [repr(row) for row in model.objects.order_by("pk").values_list()]
        for model in apps.get_models()
        if model._meta.app_label in {"exchange", "accounts", "auth"} and model._meta.model_name != "apitoken"
    }


def post(client: APIClient, path: str, body: dict[str, Any] | str | None, key: str = KEY) -> Any:
    if isinstance(body, str):  # a CSV file as a text/csv body
        return client.post(path, body, content_type="text/csv", HTTP_IDEMPOTENCY_KEY=key)
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


# --- every generically keyed endpoint --------------------------------------------------------------------
@pytest.mark.parametrize("route", sorted(CASES))
def test_the_same_key_replays_the_first_answer_and_another_request_is_409(route, settings):
    with clock.pinned(IN_SESSION):
        case = CASES[route](settings)
    assert resolve(case.path.split("?")[0]).route == route
    with clock.pinned(case.at):
        before = case.effect()

        first = post(case.client, case.path, case.body)
        assert 200 <= first.status_code < 300, first.content
        assert REPLAYED_HEADER not in first
        done = database()
        assert case.effect() != before, "the first request changed nothing"

        again = post(case.client, case.path, case.body)
        assert (again.status_code, again.content) == (first.status_code, first.content)
        assert again[REPLAYED_HEADER] == "true"
        assert database() == done

        other = post(case.client, case.other_path or case.path, case.other_body)
        assert error_of(other) == (409, "idempotency_conflict")
        assert other.json()["error"]["details"] == {
            "idempotency_key": KEY,
            "first_request": f"POST {case.path.split('?')[0]}",
        }
        assert database() == done
    assert IdempotentRequest.objects.count() == 1


def test_without_a_key_each_request_acts():
    ps = make_pledges()
    client = client_of(ps.borrower[2])

    responses = [client.post("/api/v1/accounts", {"name": "Trading"}, format="json") for _ in range(2)]

    assert [r.status_code for r in responses] == [201, 201]
    assert Account.objects.filter(participant=ps.borrower[0]).count() == 3
    assert IdempotentRequest.objects.count() == 0


def test_a_refused_request_leaves_its_key_unused():
    ps = make_pledges()
    client = client_of(ps.ex.operator)
    body = {"account": ps.account.number, "amount": "100.00", "reference": "PAY-1"}
    before = database()

    refused = post(client, "/api/v1/cash/withdrawals", body)
    assert error_of(refused) == (409, "insufficient_available")
    assert database() == before

    ps.ex.deposit(ps.account, 1_000_000)
    retried = post(client, "/api/v1/cash/withdrawals", body)

    assert retried.status_code == 201
    assert REPLAYED_HEADER not in retried
    assert balance(ps.account, ps.ex.cny) == (1_000_000 - 10_000, 0)


def test_keys_belong_to_the_participant():
    ps = make_pledges()
    _, broker_account, _ = ps.ex.trader("Broker")
    body = {"account": broker_account.number}

    mine = post(client_of(ps.borrower[2]), "/api/v1/trusted-accounts", body)
    theirs = post(client_of(ps.bank[2]), "/api/v1/trusted-accounts", body)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert REPLAYED_HEADER not in theirs
    assert sorted(TrustedAccount.objects.values_list("participant_id", flat=True)) == sorted(
        [ps.borrower[0].pk, ps.bank[0].pk]
    )


def test_a_bad_key_is_400_and_changes_nothing():
    ps = make_pledges()
    before = database()

    response = post(
        client_of(ps.ex.operator),
        "/api/v1/cash/deposits",
        {"account": ps.account.number, "amount": "1.00", "reference": "B-1"},
        key="k" * 129,
    )

    assert error_of(response) == (400, "invalid")
    assert database() == before


def test_the_body_is_compared_as_data_not_as_text():
    ps = make_pledges()
    client = client_of(ps.ex.operator)
    body = {"account": ps.account.number, "amount": "1.00", "reference": "B-1"}
    reordered = json.dumps(dict(reversed(body.items())), separators=(",", ":"))

    first = client.post(
        "/api/v1/cash/deposits", json.dumps(body, indent=2), content_type="application/json", HTTP_IDEMPOTENCY_KEY=KEY
    )
    again = client.post("/api/v1/cash/deposits", reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again[REPLAYED_HEADER] == "true"
    assert balance(ps.account, ps.ex.cny) == (100, 0)


# --- replays the services recognise say so too -----------------------------------------------------------
def test_a_journal_replay_says_it_is_one():
    ps = make_pledges()
    _, other, _ = ps.ex.trader("Other")
    client = client_of(ps.borrower[2])
    body = {"source": ps.account.number, "destination": other.number, "asset": "CEA-2024", "quantity": 5}

    first = post(client, "/api/v1/transfers", body)
    again = post(client, "/api/v1/transfers", body)

    assert (first.status_code, again.status_code) == (201, 201)
    assert REPLAYED_HEADER not in first
    assert again[REPLAYED_HEADER] == "true"
    assert again.content == first.content


def test_a_bank_reference_booked_already_is_409_not_a_replay():
    """The bank reference is a uniqueness rule (issue 13): only the Idempotency-Key replays."""
    ps = make_pledges()
    client = client_of(ps.ex.operator)
    body = {"account": ps.account.number, "amount": "100.00", "reference": "BANK-7"}

    first = post(client, "/api/v1/cash/deposits", body, key="k-1")
    after_first = database()
    again = post(client, "/api/v1/cash/deposits", body, key="k-2")  # another key, one bank reference
    retried = post(client, "/api/v1/cash/deposits", body, key="k-1")

    assert first.status_code == 201
    assert error_of(again) == (409, "duplicate_bank_reference")
    assert again.json()["error"]["details"] == {"reference": "BANK-7"}
    assert (retried.status_code, retried.content, retried[REPLAYED_HEADER]) == (201, first.content, "true")
    assert database() == after_first
    assert balance(ps.account, ps.ex.cny) == (10_000, 0)


# --- 8 clients, one key, at once ---------------------------------------------------------------------------
def _account_burst() -> tuple[str, str, dict[str, Any], Callable[[], object]]:
    ps = make_pledges()
    owner = ps.borrower[0]
    return token_for(ps.borrower[2]), "/api/v1/accounts", {"name": "Trading"}, owner.accounts.count


def _deposit_burst() -> tuple[str, str, dict[str, Any], Callable[[], object]]:
    ps = make_pledges()
    body = {"account": ps.account.number, "amount": "100.00", "reference": "BANK-BURST"}
    return token_for(ps.ex.operator), "/api/v1/cash/deposits", body, lambda: balance(ps.account, ps.ex.cny)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("name", "effect_once"), [("account", 2), ("deposit", (10_000, 0))])
def test_one_key_sent_by_8_clients_at_once_acts_once_and_answers_alike(name, effect_once):
    token, url, body, effect = {"account": _account_burst, "deposit": _deposit_burst}[name]()
    responses = all_at_once(8, lambda client: post(client, url, body, key="burst-1"), token=token)

    assert [r.status_code for r in responses] == [201] * 8
    assert len({r.content for r in responses}) == 1
    assert sorted(r.get(REPLAYED_HEADER, "") for r in responses) == [""] + ["true"] * 7
    assert effect() == effect_once
    assert IdempotentRequest.objects.count() == 1


def _same_client(client: APIClient) -> Callable[[], APIClient]:
    """A maker of clients authenticated as ``client`` is (one client per thread)."""
    user = client.handler._force_user

    def make() -> APIClient:
        twin = APIClient()
        twin.force_authenticate(user)
        return twin

    return make


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", sorted(CASES))
def test_on_every_keyed_endpoint_8_clients_sending_one_key_at_once_get_one_effect_and_one_answer(route, settings):
    """Every endpoint the URLconf keys (CASES is held equal to it below): one effect, no 5xx, one answer."""
    with clock.pinned(IN_SESSION):
        case = CASES[route](settings)
    with clock.pinned(case.at):
        before = case.effect()
        responses = all_at_once(
            8, lambda client: post(client, case.path, case.body, key="burst-1"), make_client=_same_client(case.client)
        )
        after = case.effect()
        done = database()

        statuses = [r.status_code for r in responses]
        assert all(status < 500 for status in statuses), [r.content for r in responses]
        assert len(set(statuses)) == 1, [r.content for r in responses]
        assert 200 <= statuses[0] < 300, responses[0].content
        assert len({r.content for r in responses}) == 1
        assert sorted(r.get(REPLAYED_HEADER, "") for r in responses) == [""] + ["true"] * 7
        assert after != before, "the burst changed nothing"
        assert IdempotentRequest.objects.count() == 1
        # Once: the same key again answers alike and changes nothing more.
        again = post(_same_client(case.client)(), case.path, case.body, key="burst-1")
        assert (again.status_code, again.content) == (statuses[0], responses[0].content)
        assert database() == done


# --- no POST forgets its key ----------------------------------------------------------------------------------
def _keying(view: type, method: str) -> str | None:
    return getattr(getattr(view, method.lower()), "idempotency", None)


def test_every_changing_endpoint_is_keyed_or_exempted_with_a_reason():
    changing = {k: v for k, v in api_routes().items() if k[0] != "GET"}
    unkeyed = sorted(k for k, view in changing.items() if _keying(view, k[0]) is None)
    assert unkeyed == sorted(EXEMPT), "a POST without key handling: key it (exchange/api/idempotency.py) or exempt it"
    for method, route in EXEMPT:
        assert (method, route) in changing, f"exempted, but no such endpoint: {method} {route}"


def test_every_generically_keyed_endpoint_has_a_case_here():
    generic = {route for (method, route), view in api_routes().items() if _keying(view, method) == "request"}
    assert all(method == "POST" for (method, _), view in api_routes().items() if _keying(view, method))
    assert sorted(generic) == sorted(CASES)


def test_the_schema_offers_the_key_exactly_where_it_is_honoured():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    def offers_key(method: str, route: str) -> bool:
        path = "/" + re.sub(r"<\w+:(\w+)>", lambda m: "{id}" if m[1] == "pk" else "{" + m[1] + "}", route)
        operation = schema["paths"][path][method.lower()]
        shared = "#/components/parameters/IdempotencyKey"
        parameters = operation.get("parameters", [])
        return any(p.get("$ref") == shared or p.get("name") == "Idempotency-Key" for p in parameters)

    for (method, route), view in api_routes().items():
        if method != "GET":
            assert offers_key(method, route) == (_keying(view, method) is not None), (method, route)
    shared = schema["components"]["parameters"]["IdempotencyKey"]
    assert (shared["in"], shared["name"]) == ("header", "Idempotency-Key")
    assert (shared["schema"]["minLength"], shared["schema"]["maxLength"]) == (1, 128)


def test_kept_answers_are_forgotten_after_the_retention_period_and_the_key_acts_afresh():
    from exchange.services.idempotency import idempotent_requests_forget

    ps = make_pledges()
    client = client_of(ps.borrower[2])
    first = post(client, "/api/v1/accounts", {"name": "Trading"})
    assert first.status_code == 201
    kept = IdempotentRequest.objects.get()
    retention = timedelta(days=settings.GREENLEDGER["IDEMPOTENCY_RETENTION_DAYS"])

    assert idempotent_requests_forget(now=kept.created_at + retention) == 0  # not older than the period yet
    assert post(client, "/api/v1/accounts", {"name": "Trading"})[REPLAYED_HEADER] == "true"
    assert idempotent_requests_forget(now=kept.created_at + retention + timedelta(seconds=1)) == 1
    assert not IdempotentRequest.objects.exists()

    again = post(client, "/api/v1/accounts", {"name": "Trading"})
    assert again.status_code == 201
    assert REPLAYED_HEADER not in again
    assert Account.objects.filter(participant=ps.borrower[0]).count() == 3


def test_forgetting_takes_a_bounded_number_at_a_time():
    from exchange.services.idempotency import idempotent_requests_forget

    old = clock.now() - timedelta(days=settings.GREENLEDGER["IDEMPOTENCY_RETENTION_DAYS"] + 1)
    IdempotentRequestFactory.create_batch(5, path="/x", created_at=old)
    assert idempotent_requests_forget(batch=3) == 3
    assert idempotent_requests_forget(batch=3) == 2
    assert idempotent_requests_forget(batch=3) == 0
