"""What each audit action tells which participants: the one mapping from audit events to participant events.

Every service writes its audit event in its transaction; the database trigger ``greenledger_event_project``
(``exchange/sql``) projects each event, in that same transaction, through the routes listed here into
``ParticipantEvent`` rows, one per concerned participant, each with only what that participant may see.
An action with no route produces no event, so a new service gets events by adding its routes here
(``PLANNED`` names the types its services will produce). ``sync()`` writes ``ROUTES`` into the
``EventRoute`` table the trigger reads; it runs after every ``migrate`` and when ``serve`` starts, and is
idempotent. ``docs/events.md`` describes every type; a test holds it to this module.

A resolver (``greenledger_event_concerned``) finds the participants and builds their payloads:

- ``accounts``: the holders of the accounts named (by number) in the payload ``keys``; each sees ``fields``;
- ``row``: the participant columns ``columns`` of the row of ``table`` whose id is the payload ``key`` (or
  the event's object id); each sees ``fields`` (``"*"``: the whole payload but its entry digest);
- ``ints`` (any resolver): payload keys, besides the shared kinds (quantity, order, pledge, ...), whose
  whole-number strings come out as JSON numbers;
- ``rows``: each element of a payload list (allocation rows, batch transfers) to the holders of the accounts
  at its positions ``accounts``, with the positions named in ``columns``;
- ``fills`` (an order placement, a listing pick), ``auction``, ``orders_at_close``, ``settlement``,
  ``valuations``: built per participant in SQL, each its own side only.

``id_as`` adds the audit event's object id to the payload under that name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction


@dataclass(frozen=True)
class Route:
    action: str
    event_type: str
    resolver: str
    args: dict[str, Any] = field(default_factory=dict)


ORDER = {"table": "exchange_order", "columns": ["participant_id"]}
PLEDGE = {"table": "exchange_pledgeloan", "columns": ["borrower_id", "lender_id"]}
PLEDGE_BY_KEY = {**PLEDGE, "key": "pledge", "fields": "*"}
TRANSFER_FIELDS = ["source", "destination", "asset", "quantity", "memo", "ranges"]

ROUTES: tuple[Route, ...] = (
    # orders and trades
    Route(
        "order.place",
        "order.accepted",
        "row",
        {
            **ORDER,
            "id_as": "order",
            "fields": ["client_order_id", "account", "asset", "side", "mode", "price", "quantity"],
        },
    ),
    Route("order.place", "order.filled", "fills"),
    Route(
        "order.cancel",
        "order.cancelled",
        "row",
        {**ORDER, "id_as": "order", "fields": ["filled", "unfilled", "released"]},
    ),
    Route("order.cancel_at_close", "order.expired", "orders_at_close"),
    Route("settlement.run", "trade.settled", "settlement"),
    # transfers
    Route(
        "transfer.create",
        "transfer.executed",
        "accounts",
        {"keys": ["source", "destination"], "fields": TRANSFER_FIELDS, "id_as": "transaction"},
    ),
    Route(
        "transfer.batch",
        "transfer.executed",
        "rows",
        {
            "list": "transfers",
            "accounts": [0, 1],
            "columns": {"source": 0, "destination": 1, "asset": 2, "quantity": 3},
            "fields": ["memo"],
            "id_as": "transaction",
        },
    ),
    Route(
        "transfer.pending",
        "transfer.pending",
        "accounts",
        {"keys": ["source"], "fields": [*TRANSFER_FIELDS[:5], "execute_after"], "id_as": "pending_transfer"},
    ),
    Route(
        "transfer.pending_execute",
        "transfer.pending_executed",
        "accounts",
        {"keys": ["source", "destination"], "fields": ["pending_transfer", *TRANSFER_FIELDS], "id_as": "transaction"},
    ),
    Route(
        "transfer.pending_cancel",
        "transfer.pending_cancelled",
        "row",
        {
            "table": "exchange_pendingtransfer",
            "columns": ["participant_id"],
            "fields": ["quantity"],
            "id_as": "pending_transfer",
        },
    ),
    Route(
        "transfer.non_trade_execute",
        "transfer.non_trade_approved",
        "accounts",
        {
            "keys": ["source", "destination"],
            "fields": ["source", "destination", "asset", "quantity", "legal_basis", "ranges"],
            "id_as": "transaction",
        },
    ),
    Route(
        "transfer.non_trade_reject",
        "transfer.non_trade_rejected",
        "accounts",
        {
            "keys": ["source", "destination"],
            "fields": ["source", "destination", "asset", "quantity", "reason", "released"],
            "id_as": "non_trade_transfer",
        },
    ),
    # listings, block agreements, auctions: each side its own order
    Route("listing.pick", "listing.picked", "fills", {"resting": 1, "quantity": 2}),
    Route(
        "block.offer",
        "block_offer.received",
        "row",
        {
            "table": "accounts_participant",
            "columns": ["id"],
            "key": "counterparty",
            "fields": ["asset", "market", "side", "price", "quantity"],
            "id_as": "offer",
        },
    ),
    Route(
        "block.accept",
        "block_offer.accepted",
        "row",
        {**ORDER, "key": "offer", "fields": ["offer", "asset", "price", "quantity", "trade"]},
    ),
    Route("block.decline", "block_offer.declined", "row", {**ORDER, "key": "offer", "fields": ["offer", "released"]}),
    Route("auction.close", "auction.result", "auction"),
    # cash and units
    Route(
        "cash.deposit",
        "cash.deposited",
        "accounts",
        {"keys": ["account"], "fields": ["account", "amount", "reference"], "id_as": "transaction"},
    ),
    Route(
        "cash.withdraw",
        "cash.withdrawn",
        "accounts",
        {"keys": ["account"], "fields": ["account", "amount", "reference"], "id_as": "transaction"},
    ),
    Route(
        "ccer.issue",
        "units.issued",
        "accounts",
        {
            "keys": ["account"],
            "fields": ["account", "asset", "quantity", "serials", "transaction"],
            "id_as": "issuance",
        },
    ),
    Route(
        "cea.allocate",
        "units.allocated",
        "rows",
        {
            "list": "rows",
            "accounts": [0],
            "columns": {"account": 0, "quantity": 1},
            "fields": ["asset"],
            "id_as": "transaction",
        },
    ),
    Route(
        "retirement.create",
        "units.retired",
        "accounts",
        {
            "keys": ["account"],
            "fields": ["account", "asset", "quantity", "beneficiary", "reason", "ranges", "retirement"],
            "id_as": "transaction",
        },
    ),
    Route(
        "units.cancel",
        "units.cancelled",
        "accounts",
        {
            "keys": ["account"],
            "fields": ["account", "asset", "quantity", "kind", "reason", "ranges"],
            "id_as": "transaction",
        },
    ),
    Route(
        "freeze.create",
        "units.frozen",
        "accounts",
        {
            "keys": ["account"],
            "fields": ["account", "asset", "quantity", "ranges", "court", "document_number"],
            "id_as": "freeze",
        },
    ),
    Route(
        "freeze.release",
        "units.unfrozen",
        "accounts",
        {"keys": ["account"], "fields": ["account", "asset", "quantity", "document_number"], "id_as": "freeze"},
    ),
    # pledges: the borrower and the lender are both parties to everything about their pledge
    Route("pledge.request", "pledge.requested", "row", {**PLEDGE, "fields": "*", "id_as": "pledge"}),
    Route("pledge.register", "pledge.registered", "row", {**PLEDGE, "fields": "*", "id_as": "pledge"}),
    Route("pledge.reject", "pledge.rejected", "row", {**PLEDGE, "fields": "*", "id_as": "pledge"}),
    Route("pledge.withdraw", "pledge.withdrawn", "row", {**PLEDGE, "fields": "*", "id_as": "pledge"}),
    Route("pledge.valuation_run", "pledge.valued", "valuations"),
    Route("pledge.margin_call", "pledge.margin_call", "row", PLEDGE_BY_KEY),
    Route("pledge.margin_call_met", "pledge.margin_call_met", "row", PLEDGE_BY_KEY),
    Route("pledge.top_up", "pledge.topped_up", "row", PLEDGE_BY_KEY),
    # an amendment (top-up, partial release, extension) applied for by the borrower, confirmed by the lender,
    # rejected by either party or the registry, and registered, with its number and kind
    Route("pledge.amendment_request", "pledge.amendment_requested", "row", {**PLEDGE_BY_KEY, "ints": ["amendment"]}),
    Route("pledge.amendment_confirm", "pledge.amendment_confirmed", "row", {**PLEDGE_BY_KEY, "ints": ["amendment"]}),
    Route("pledge.amendment_reject", "pledge.amendment_rejected", "row", {**PLEDGE_BY_KEY, "ints": ["amendment"]}),
    Route(
        "pledge.amendment_register",
        "pledge.amended",
        "row",
        {**PLEDGE_BY_KEY, "ints": ["amendment", "number", "pledged"]},
    ),
    Route("pledge.past_maturity", "pledge.past_maturity", "row", {**PLEDGE, "fields": "*", "id_as": "pledge"}),
    Route("pledge.default", "pledge.defaulted", "row", PLEDGE_BY_KEY),
    Route("pledge.enforce_propose", "pledge.enforcement_proposed", "row", PLEDGE_BY_KEY),
    Route("pledge.enforce_declined", "pledge.enforcement_declined", "row", PLEDGE_BY_KEY),
    # enforced: by a sale on the market (the sale order placed), by agreement (units to the lender), by a court
    Route("pledge.enforce", "pledge.enforced", "row", PLEDGE_BY_KEY),
    Route("pledge.enforce_agreed", "pledge.enforced", "row", PLEDGE_BY_KEY),
    Route("pledge.enforce_court_order", "pledge.enforced", "row", PLEDGE_BY_KEY),
    Route("pledge.enforce_complete", "pledge.enforcement_completed", "row", PLEDGE_BY_KEY),
    Route("pledge.sale_settled", "pledge.sale_settled", "row", PLEDGE_BY_KEY),
    Route("pledge.cash_collateral_taken", "pledge.cash_collateral_taken", "row", PLEDGE_BY_KEY),
    Route("pledge.release", "pledge.released", "row", PLEDGE_BY_KEY),
    # approvals, compliance, the participant itself
    Route(
        "approval.request",
        "approval.waiting",
        "row",
        {
            "table": "exchange_approvalrequest",
            "columns": ["requested_participant_id"],
            "fields": ["operation", "quantity", "summary"],
            "id_as": "approval",
        },
    ),
    Route(
        "approval.approve",
        "approval.approved",
        "row",
        {
            "table": "exchange_approvalrequest",
            "columns": ["requested_participant_id"],
            "fields": ["operation", "quantity"],
            "id_as": "approval",
        },
    ),
    Route(
        "approval.reject",
        "approval.rejected",
        "row",
        {
            "table": "exchange_approvalrequest",
            "columns": ["requested_participant_id"],
            "fields": ["reason"],
            "id_as": "approval",
        },
    ),
    Route(
        "compliance.assess",
        "obligation.status_changed",
        "row",
        {"table": "exchange_obligation", "columns": ["entity_id"], "fields": "*", "id_as": "obligation"},
    ),
    Route(
        "compliance.surrender",
        "compliance.surrendered",
        "row",
        {"table": "accounts_participant", "columns": ["id"], "key": "entity", "fields": "*", "id_as": "surrender"},
    ),
    Route(
        "participant.suspend",
        "participant.suspended",
        "row",
        {"table": "accounts_participant", "columns": ["id"], "id_as": "participant"},
    ),
    Route(
        "participant.reactivate",
        "participant.reactivated",
        "row",
        {"table": "accounts_participant", "columns": ["id"], "id_as": "participant"},
    ),
)

#: Event types of services being built, and the audit actions that will carry them (routes to add then);
#: none today: every type the issue names has its route above.
PLANNED: dict[str, str] = {}


def event_types() -> list[str]:
    """Every event type produced today, in the order of ``ROUTES``."""
    return list(dict.fromkeys(r.event_type for r in ROUTES))


def sync() -> bool:
    """Write ``ROUTES`` into ``EventRoute`` (what the trigger reads); return whether anything changed."""
    from exchange.locks import lock_rows
    from exchange.models import EventRoute

    wanted = {(r.action, r.event_type): (r.resolver, r.args) for r in ROUTES}
    with transaction.atomic():
        have = {(e.action, e.event_type): e for e in lock_rows(EventRoute.objects.all())}
        changed = False
        for key, route in have.items():
            if key not in wanted:
                route.delete()
                changed = True
        for (action, event_type), (resolver, args) in wanted.items():
            row = have.get((action, event_type))
            if row is None:
                EventRoute.objects.create(action=action, event_type=event_type, resolver=resolver, args=args)
                changed = True
            elif (row.resolver, row.args) != (resolver, args):
                row.resolver, row.args = resolver, args
                row.save(update_fields=["resolver", "args"])
                changed = True
    return changed


def sync_after_migrate(**kwargs: Any) -> None:
    """post_migrate receiver: the routes follow the code after every migrate (and test flush)."""
    sync()
