"""The permission matrix: every API endpoint x every kind of caller, with the status each must get.

Callers: anonymous, an admin of each participant kind, a viewer and a trader of the same compliance
entity, another compliance entity, and a suspended one. Detail endpoints are asked about objects that
belong to the first compliance entity ("mine"), so everyone else sees "not found" (404) where the object
is not theirs to see. POSTs to detail endpoints name a missing object (the permission checks run first);
POSTs to collections send an empty body (400 once allowed). Every call runs in a savepoint rolled back
afterwards, so the table is order-free. ``test_the_matrix_covers_every_endpoint`` fails when an endpoint
is added without its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import ParticipantKind, Role
from accounts.services import participant_suspend
from core import clock
from exchange.models import AuditEvent
from exchange.services.calendar import calendar_year_load
from exchange.services.retirement import retirement_create
from exchange.services.sealing import audit_seal
from exchange.services.transfers import transfer_create
from exchange.services.webhooks import webhook_endpoint_create
from tests.factories import MembershipFactory
from tests.helpers.api import api_routes
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = pytest.mark.django_db

MINE = {"mine", "mine_viewer", "mine_trader"}
CALLERS = [
    "anonymous",
    "registry",
    "exchange",
    "mine",
    "mine_viewer",
    "mine_trader",
    "other_entity",
    "project_owner",
    "investor",
    "bank",
    "verifier",
    "auditor",
    "suspended",
]
KIND = {
    "registry": ParticipantKind.REGISTRY,
    "exchange": ParticipantKind.EXCHANGE,
    "mine": ParticipantKind.COMPLIANCE_ENTITY,
    "mine_viewer": ParticipantKind.COMPLIANCE_ENTITY,
    "mine_trader": ParticipantKind.COMPLIANCE_ENTITY,
    "other_entity": ParticipantKind.COMPLIANCE_ENTITY,
    "suspended": ParticipantKind.COMPLIANCE_ENTITY,
    "project_owner": ParticipantKind.PROJECT_OWNER,
    "investor": ParticipantKind.INVESTOR,
    "bank": ParticipantKind.FINANCIAL_INSTITUTION,
    "verifier": ParticipantKind.VERIFIER,
    "auditor": ParticipantKind.AUDITOR,
}
MEMBERS = [c for c in CALLERS if c != "anonymous"]
OVERSEERS = {"registry", "exchange", "auditor"}
# Can't act at all: a viewer, an auditor (reads only), a suspended participant.
NO_ACTING = {"mine_viewer", "auditor", "suspended"}


def read() -> dict[str, int]:
    """Any member reads."""
    return {"anonymous": 401} | {c: 200 for c in MEMBERS}


def read_kinds(*kinds: str, ok: int = 200) -> dict[str, int]:
    return {"anonymous": 401} | {c: ok if KIND[c] in kinds else 403 for c in MEMBERS}


def owned(*also: str, overseers: set[str] = OVERSEERS) -> dict[str, int]:
    """Mine to see (and the overseers' and ``also``); anyone else: not found."""
    visible = MINE | overseers | set(also)
    return {"anonymous": 401} | {c: 200 if c in visible else 404 for c in MEMBERS}


def write(*kinds: str, ok: int = 400, missing: int | None = None) -> dict[str, int]:
    """Acting callers of ``kinds`` (any kind if none) get ``ok``; others 403."""
    statuses = {"anonymous": 401}
    for caller in MEMBERS:
        if caller in NO_ACTING or (kinds and KIND[caller] not in kinds):
            statuses[caller] = 403
        else:
            statuses[caller] = missing if missing is not None else ok
    return statuses


REGISTRY, EXCHANGE, AUDITOR = ParticipantKind.REGISTRY, ParticipantKind.EXCHANGE, ParticipantKind.AUDITOR
HOLDERS = (
    ParticipantKind.COMPLIANCE_ENTITY,
    ParticipantKind.PROJECT_OWNER,
    ParticipantKind.INVESTOR,
    ParticipantKind.FINANCIAL_INSTITUTION,
)

# (method, route) -> expected status per caller. Routes are Django's, with {placeholders} filled below.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "api/v1/"): read(),
    ("GET", "api/v1/participants"): read(),
    ("POST", "api/v1/participants"): write(REGISTRY),
    ("GET", "api/v1/participants/<id:pk>"): owned(),
    # The reason is checked before the participant is looked up.
    ("POST", "api/v1/participants/<id:pk>/suspend"): write(REGISTRY),
    ("POST", "api/v1/participants/<id:pk>/reactivate"): write(REGISTRY),
    # Asked about a token that doesn't exist: the acting check comes first, then "not found" for everyone.
    ("POST", "api/v1/tokens/<code:prefix>/revoke"): write(missing=404),
    # Public: anyone, logged in or not, may read a calendar year.
    ("GET", "api/v1/calendars/<code:calendar>/<id:year>"): {"anonymous": 200} | {c: 200 for c in MEMBERS},
    ("GET", "api/v1/projects"): read(),
    ("POST", "api/v1/projects"): write(REGISTRY),
    ("GET", "api/v1/projects/<code:code>"): read(),
    ("GET", "api/v1/projects/<code:code>/issuances"): read(),
    ("POST", "api/v1/projects/<code:code>/issuances"): write(REGISTRY),
    ("GET", "api/v1/assets"): read(),
    ("POST", "api/v1/assets/cea-vintages"): write(REGISTRY),
    ("GET", "api/v1/assets/<code:code>"): read(),
    ("POST", "api/v1/allocations"): write(REGISTRY),
    ("POST", "api/v1/allocations/csv"): write(REGISTRY),
    ("GET", "api/v1/approvals"): read_kinds(REGISTRY, AUDITOR),
    ("GET", "api/v1/approvals/<id:pk>"): read_kinds(REGISTRY, AUDITOR, ok=404),  # asked about a missing one
    ("POST", "api/v1/approvals/<id:pk>/approve"): write(REGISTRY, missing=404),
    ("POST", "api/v1/approvals/<id:pk>/reject"): write(REGISTRY),
    ("GET", "api/v1/accounts"): read(),
    ("GET", "api/v1/notices"): read(),  # each member sees its own participant's notices
    # Opening an account: an admin of a participant that holds units; the others hold none.
    ("POST", "api/v1/accounts"): {"anonymous": 401}
    | {c: 403 for c in MEMBERS}
    | {c: 201 for c in ("mine", "other_entity", "project_owner", "investor", "bank")},
    ("GET", "api/v1/accounts/<code:number>"): owned(),
    ("GET", "api/v1/accounts/<code:number>/holdings"): owned(),
    ("GET", "api/v1/accounts/<code:number>/blocks"): owned(),
    ("GET", "api/v1/accounts/<code:number>/statement"): owned(),
    ("POST", "api/v1/transfers"): write(),
    ("POST", "api/v1/transfers/batch"): write(),
    ("GET", "api/v1/transfers/pending"): read(),
    ("POST", "api/v1/transfers/pending/<id:pk>/cancel"): write(missing=404),
    ("GET", "api/v1/trusted-accounts"): read(),
    # Proposing: an admin (the body is checked first); approving and removing: an admin, of the entry's owner.
    ("POST", "api/v1/trusted-accounts"): write(ok=400),
    ("POST", "api/v1/trusted-accounts/<id:pk>/approve"): write(missing=404),
    ("POST", "api/v1/trusted-accounts/<id:pk>/remove"): write(missing=404),
    ("GET", "api/v1/retirements"): read(),
    ("POST", "api/v1/retirements"): write(),
    ("GET", "api/v1/retirements/<id:pk>"): owned(),
    ("POST", "api/v1/cancellations"): write(REGISTRY),
    ("GET", "api/v1/transactions/<id:pk>"): owned(),
    ("GET", "api/v1/serials/<code:asset>/<id:serial>"): read(),
    ("GET", "api/v1/market/listings"): read(),
    ("POST", "api/v1/market/listings"): write(EXCHANGE),
    ("GET", "api/v1/market/listings/<code:asset>"): read(),
    ("PATCH", "api/v1/market/listings/<code:asset>"): write(EXCHANGE, ok=200),
    ("GET", "api/v1/market/<code:asset>/book"): read(),
    ("GET", "api/v1/market/<code:asset>/trades"): read(),
    ("GET", "api/v1/market/<code:asset>/daily"): read(),
    ("GET", "api/v1/market/<code:asset>/listing-book"): read(),
    ("GET", "api/v1/risk/large-holders"): read_kinds(EXCHANGE, REGISTRY, AUDITOR),
    ("GET", "api/v1/risk/alerts"): read_kinds(EXCHANGE, REGISTRY, AUDITOR),
    # Public market data: anyone, logged in or not.
    ("GET", "api/v1/public/quotes"): {"anonymous": 200} | {c: 200 for c in MEMBERS},
    ("GET", "api/v1/public/quotes.csv"): {"anonymous": 200} | {c: 200 for c in MEMBERS},
    ("POST", "api/v1/listings"): write(),
    ("POST", "api/v1/listings/pick"): write(),
    ("POST", "api/v1/listings/<id:pk>/pick"): write(),
    ("GET", "api/v1/blocks"): read(),
    ("POST", "api/v1/blocks"): write(),
    ("POST", "api/v1/blocks/<id:pk>/accept"): write(),
    ("POST", "api/v1/blocks/<id:pk>/decline"): write(missing=404),
    ("POST", "api/v1/blocks/<id:pk>/counter"): write(),
    ("GET", "api/v1/auctions"): read(),
    ("POST", "api/v1/auctions"): write(),
    ("POST", "api/v1/auctions/<id:pk>/bids"): write(),
    ("POST", "api/v1/auctions/<id:pk>/close"): write(missing=404),
    ("POST", "api/v1/cash/deposits"): write(EXCHANGE),
    ("POST", "api/v1/cash/withdrawals"): write(EXCHANGE),
    ("GET", "api/v1/orders"): read(),
    ("POST", "api/v1/orders"): write(),
    ("GET", "api/v1/orders/<id:pk>"): owned(),
    ("POST", "api/v1/orders/<id:pk>/cancel"): write(missing=404),
    ("GET", "api/v1/trades"): read(),
    ("GET", "api/v1/settlement/batches"): read_kinds(EXCHANGE, REGISTRY, AUDITOR),
    ("POST", "api/v1/settlement/batches"): write(REGISTRY, ok=201),  # the settlement body (Decree 775 art. 5)
    ("GET", "api/v1/pledges"): read(),
    ("POST", "api/v1/pledges"): write(),
    ("GET", "api/v1/pledges/loan-book"): read_kinds(ParticipantKind.FINANCIAL_INSTITUTION),
    ("GET", "api/v1/pledges/register"): read_kinds(REGISTRY, EXCHANGE, AUDITOR),
    ("GET", "api/v1/pledges/exposure"): read_kinds(ParticipantKind.FINANCIAL_INSTITUTION, REGISTRY, EXCHANGE, AUDITOR),
    ("GET", "api/v1/pledges/<id:pk>"): owned("bank"),
    ("GET", "api/v1/pledges/<id:pk>/valuations"): owned("bank"),
    **{
        ("POST", f"api/v1/pledges/<id:pk>/{step}"): write(missing=404)
        for step in (
            "accept",
            "register",
            "external-registration",
            "reject",
            "withdraw",
            "release",
            "default",
            "enforce",
            "enforce/agree",
            "enforce/decline",
            "court-order",
            "compliance-release",
            "compliance-release/decide",
        )
    },
    # Amendments of a registered pledge: read like the pledge; the POSTs name a missing pledge.
    ("GET", "api/v1/pledges/<id:pk>/amendments"): owned("bank"),
    ("POST", "api/v1/pledges/<id:pk>/amendments"): write(missing=404),
    **{
        ("POST", f"api/v1/pledges/<id:pk>/amendments/<id:number>/{step}"): write(missing=404)
        for step in ("confirm", "register", "reject")
    },
    # A market's rulebook versions: any member reads; exchange or registry staff publish (an empty body: 400).
    ("GET", "api/v1/markets/<code:market>/rulebooks"): read(),
    ("POST", "api/v1/markets/<code:market>/rulebooks"): write(EXCHANGE, REGISTRY),
    ("GET", "api/v1/audit/events"): read_kinds(AUDITOR, REGISTRY),
    ("GET", "api/v1/audit/events/<id:seq>"): read_kinds(AUDITOR, REGISTRY),
    # Proofs: the actor's own events, and any for the auditors and the registry (not the exchange).
    ("GET", "api/v1/audit/events/<id:seq>/proof"): owned(overseers={"registry", "auditor"}),
    ("GET", "api/v1/audit/checkpoints"): read(),
    # Public: outside parties keep the signed feed and the keys that sign it.
    ("GET", "api/v1/audit/checkpoints/feed"): {c: 200 for c in CALLERS},
    ("GET", "api/v1/audit/public-keys"): {c: 200 for c in CALLERS},
    ("GET", "api/v1/audit/verify"): read_kinds(AUDITOR, REGISTRY),
    ("POST", "api/v1/audit/seal"): write(REGISTRY, ok=200),
    # Judicial freezes: the registry acts on a court's order; the auditors read.
    ("GET", "api/v1/freezes"): read_kinds(REGISTRY, AUDITOR),
    ("POST", "api/v1/freezes"): write(REGISTRY),
    ("POST", "api/v1/freezes/<id:pk>/release"): write(REGISTRY),
    ("POST", "api/v1/freezes/<id:pk>/seize"): write(REGISTRY),
    # Non-trade transfers: a holder (or the registry) applies; registry officers review or reject.
    ("GET", "api/v1/non-trade-transfers"): read(),
    ("POST", "api/v1/non-trade-transfers"): write(),
    ("POST", "api/v1/non-trade-transfers/<id:pk>/review"): write(REGISTRY, missing=404),
    ("POST", "api/v1/non-trade-transfers/<id:pk>/reject"): write(REGISTRY),
    # The CCER cycle: public reads (applications and claims are published for comment), owners apply and
    # claim, any acting member comments, the registry publishes and decides.
    ("GET", "api/v1/ccer/methodologies"): read(),
    ("GET", "api/v1/ccer/rules"): read(),
    ("GET", "api/v1/ccer/applications"): read(),
    ("POST", "api/v1/ccer/applications"): write(),
    ("GET", "api/v1/ccer/applications/<id:pk>"): {"anonymous": 401} | {c: 404 for c in MEMBERS},
    ("POST", "api/v1/ccer/applications/<id:pk>/publicity"): write(REGISTRY, missing=404),
    ("POST", "api/v1/ccer/applications/<id:pk>/comments"): write(missing=404),
    ("POST", "api/v1/ccer/applications/<id:pk>/decision"): write(REGISTRY),
    ("GET", "api/v1/ccer/claims"): read(),
    ("POST", "api/v1/ccer/claims"): write(),
    ("GET", "api/v1/ccer/claims/<id:pk>"): {"anonymous": 401} | {c: 404 for c in MEMBERS},
    ("POST", "api/v1/ccer/claims/<id:pk>/publicity"): write(REGISTRY, missing=404),
    ("POST", "api/v1/ccer/claims/<id:pk>/comments"): write(missing=404),
    ("POST", "api/v1/ccer/claims/<id:pk>/decision"): write(REGISTRY),
    ("GET", "api/v1/compliance/years"): read(),
    ("POST", "api/v1/compliance/years"): write(REGISTRY),
    ("GET", "api/v1/compliance/years/<id:year>"): read(),
    ("PATCH", "api/v1/compliance/years/<id:year>"): write(REGISTRY, ok=200),
    ("POST", "api/v1/compliance/years/<id:year>/entities"): write(REGISTRY),
    ("POST", "api/v1/compliance/years/<id:year>/preallocation"): write(REGISTRY, ok=200),
    ("POST", "api/v1/compliance/years/<id:year>/assessment"): write(REGISTRY, ok=200),  # 2024's deadline passed
    ("GET", "api/v1/compliance/emissions"): read(),  # each entity sees its own
    ("POST", "api/v1/compliance/emissions"): write(ParticipantKind.VERIFIER, REGISTRY),
    ("GET", "api/v1/compliance/obligations"): read(),
    ("GET", "api/v1/compliance/obligations/<id:pk>"): owned("verifier"),
    ("POST", "api/v1/compliance/obligations/<id:pk>/true-up"): write(REGISTRY, missing=404),
    ("GET", "api/v1/compliance/surrenders"): read(),
    ("POST", "api/v1/compliance/surrenders"): write(),
    ("GET", "api/v1/compliance/entities/<id:participant>/statement"): owned("verifier"),
    # Asked without ?year=: those who may see it are told to name the plan year (400), others "not found".
    ("GET", "api/v1/compliance/entities/<id:participant>/carryover"): {
        caller: 400 if status == 200 else status for caller, status in owned("verifier").items()
    },
    ("GET", "api/v1/compliance/allocation-rules"): read(),
    ("POST", "api/v1/compliance/allocation-rules"): write(REGISTRY),
    ("GET", "api/v1/compliance/carryover-rules"): read(),
    ("POST", "api/v1/compliance/carryover-rules"): write(REGISTRY),
    ("GET", "api/v1/compliance/prices"): read(),
    ("POST", "api/v1/compliance/prices"): write(REGISTRY),
    ("POST", "api/v1/compliance/years/<id:year>/allocation"): write(REGISTRY, ok=200),  # no final rule: nothing
    ("POST", "api/v1/compliance/obligations/<id:pk>/allocation-input"): write(
        ParticipantKind.VERIFIER, REGISTRY, missing=404
    ),
    ("POST", "api/v1/compliance/obligations/<id:pk>/deduction"): write(REGISTRY, missing=404),
    ("POST", "api/v1/compliance/obligations/<id:pk>/determination"): write(REGISTRY, missing=404),
    # Events and webhooks: each member its own participant's; nobody, overseers included, sees another's.
    ("GET", "api/v1/events"): read(),
    ("GET", "api/v1/events/stream"): read(),
    ("GET", "api/v1/webhooks"): read(),
    ("POST", "api/v1/webhooks"): write(ok=400),
    ("GET", "api/v1/webhooks/<id:pk>"): owned(overseers=set()),
    ("GET", "api/v1/webhooks/<id:pk>/deliveries"): owned(overseers=set()),
    ("POST", "api/v1/webhooks/<id:pk>/disable"): write(missing=404),
    ("POST", "api/v1/webhooks/<id:pk>/enable"): write(missing=404),
}

MISSING = 987654321


@dataclass
class World:
    values: dict[str, object]
    clients: dict[str, APIClient]


@pytest.fixture
def world():
    from exchange.services.compliance import compliance_year_create, entities_cover
    from exchange.services.issuance import project_register
    from exchange.services.pledges import pledge_request

    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        market = ex.market
        mine, mine_account, mine_actor = ex.trader("Mine", units=500, cash_fen=10_000_000)
        other, other_account, _ = ex.trader("Other entity", units=10)
        bank, _, _ = ex.trader("Bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)
        order = ex.order(mine_actor, mine_account, "sell", 8100, 10).order
        retirement = retirement_create(
            actor=mine_actor, account=mine_account, asset=ex.cea, quantity=5, beneficiary="b", reason="r"
        )
        transfer_create(actor=mine_actor, source=mine_account, destination=other_account, asset=ex.cea, quantity=1)
        pledge = pledge_request(
            actor=mine_actor,
            account=mine_account,
            lender=bank,
            asset=ex.cea,
            quantity=100,
            principal_fen=400_000,
            annual_rate_bp=385,
            start_date=IN_SESSION.date(),
            maturity_date=date(2027, 11, 25),
            ltv_limit_bp=7000,
            margin_call_bp=8000,
            liquidation_bp=9000,
        )
        project = project_register(
            actor=market.registry_actor,
            code="P-PERM",
            name="Forest",
            project_type="forestry",
            methodology="M",
            location="Tongzhou",
            owner=mine,
            crediting_start=date(2020, 1, 1),
            crediting_end=date(2040, 1, 1),
        )
        year = compliance_year_create(actor=market.registry_actor, year=2024)
        [obligation] = entities_cover(actor=market.registry_actor, year=year, entities=[mine])
        audit_seal()
        proof_seq = AuditEvent.objects.get(action="retirement.create").seq
        calendar_year_load(actor=market.registry_actor, code="CN", year=2026)
        suspended, _, _ = ex.trader("Suspended")
        participant_suspend(actor=market.registry_actor, participant=suspended, reason="test")
        webhook = webhook_endpoint_create(actor=mine_actor, url="https://hooks.example.com/mine", types=[])

    participants = {
        "registry": (market.registry, Role.ADMIN),
        "exchange": (market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0], Role.ADMIN),
        "mine": (mine, Role.ADMIN),
        "mine_viewer": (mine, Role.VIEWER),
        "mine_trader": (mine, Role.TRADER),
        "other_entity": (other, Role.ADMIN),
        "project_owner": (market.holder("Owner", kind=ParticipantKind.PROJECT_OWNER)[0], Role.ADMIN),
        "investor": (market.holder("Investor", kind=ParticipantKind.INVESTOR)[0], Role.ADMIN),
        "bank": (bank, Role.ADMIN),
        "verifier": (market.holder("Verifier", kind=ParticipantKind.VERIFIER)[0], Role.ADMIN),
        "auditor": (market.holder("Auditor", kind=ParticipantKind.AUDITOR)[0], Role.ADMIN),
        "suspended": (suspended, Role.ADMIN),
    }
    clients = {"anonymous": APIClient()}
    for caller, (participant, role) in participants.items():
        client = APIClient()
        client.force_authenticate(MembershipFactory(participant=participant, role=role).user)
        clients[caller] = client
    values = {
        "code": project.code,
        "number": mine_account.number,
        "asset": ex.cea.code,
        "serial": 1,
        "seq": proof_seq,
        "year": year.pk,
        "participant": mine.pk,
        "mine": mine.pk,
        "retirement": retirement.pk,
        "transaction": retirement.transaction_id,
        "order": order.pk,
        "pledge": pledge.pk,
        "obligation": obligation.pk,
        "prefix": "nosuchprefix",
        "webhook": webhook.pk,
        "market": ex.cea.market.code,
    }
    return World(values=values, clients=clients)


def path_for(method: str, route: str, values: dict[str, object]) -> str:
    """Fill the route's placeholders: real objects of mine for reads, a missing one for detail POSTs."""
    owner_of = {
        "participants": "mine",
        "retirements": "retirement",
        "transactions": "transaction",
        "orders": "order",
        "pledges": "pledge",
        "obligations": "obligation",
        "webhooks": "webhook",
    }
    parts = []
    segments = route.split("/")
    for index, segment in enumerate(segments):
        if segment.startswith("<"):
            name = segment.strip("<>").split(":")[1]
            if name == "code" and segments[index - 1] == "assets":
                value = values["asset"]
            elif segments[index - 1] == "calendars" or segments[index - 2] == "calendars":
                value = {"calendar": "CN", "year": 2026}[name]
            elif name == "number" and segments[index - 1] == "amendments":
                value = MISSING  # asked about under a missing pledge: the world has no amendment
            elif name == "pk":
                resource = segments[index - 1]
                # Approvals, CCER applications and claims are asked about a missing one: the world has none.
                asked_missing = method != "GET" or resource in ("approvals", "applications", "claims")
                value = MISSING if asked_missing else values[owner_of[resource]]
            else:
                value = values[name]
            parts.append(str(value))
        else:
            parts.append(segment)
    return "/" + "/".join(parts)


class _Undo(Exception):
    pass


def test_every_caller_gets_the_status_the_matrix_says(world):
    mismatches = []
    with clock.pinned(IN_SESSION):
        for (method, route), expected in MATRIX.items():
            path = path_for(method, route, world.values)
            for caller in CALLERS:
                status = None
                try:
                    with transaction.atomic():
                        response = getattr(world.clients[caller], method.lower())(path, {}, format="json")
                        status = response.status_code
                        raise _Undo
                except _Undo:
                    pass
                if status != expected[caller]:
                    body = response.json() if response["Content-Type"].startswith("application/json") else {}
                    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                    mismatches.append(f"{method} {path} as {caller}: {status} ({code}), expected {expected[caller]}")
    assert mismatches == [], "\n" + "\n".join(mismatches)


def test_the_matrix_covers_every_endpoint():
    live = set(api_routes())
    assert sorted(live - set(MATRIX)) == [], "endpoints without a row in the permission matrix"
    assert sorted(set(MATRIX) - live) == [], "rows for endpoints that no longer exist"
