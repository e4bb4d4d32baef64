"""A participant never receives another's events: each type produced by its real cause, next to a bystander.

``test_projection``'s scenario produces the trading and transfer types in one market; the registry, agreement,
auction and pledge types each need a world of their own, built here. Every event of the type must concern
the participant it went to (``_concerns``), and a bystander with accounts, units and cash of its own in the
same world receives none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from core import clock
from exchange.models import ApprovalOperation, Order, ParticipantEvent, PledgeAmendment, PledgeLoan
from exchange.services import approvals as ap
from exchange.services import compliance as comp
from exchange.services.agreements import (
    block_accept,
    block_counter,
    block_decline,
    block_offer,
    listing_pick,
    listing_post,
)
from exchange.services.auctions import auction_announce, auction_bid, auction_close
from exchange.services.freezes import judicial_freeze_create, judicial_freeze_release
from exchange.services.nontrade import non_trade_transfer_apply, non_trade_transfer_reject, non_trade_transfer_review
from exchange.services.pledges import (
    pledge_default,
    pledge_enforce,
    pledge_enforcement_agree,
    pledge_enforcement_decline,
    pledge_release,
    pledges_value,
)
from exchange.services.pledges.amendments import (
    pledge_amendment_confirm,
    pledge_amendment_register,
    pledge_amendment_reject,
    pledge_amendment_request,
)
from tests.exchange.events.test_projection import SCENARIO_TYPES, _account_numbers, _concerns, _owns_account
from tests.exchange.services.test_agreements import WEDNESDAY, National, at
from tests.helpers.ledger import actor_for, make_market
from tests.helpers.pledges import DAY, make_pledges
from tests.helpers.pledges import at as pledge_at

pytestmark = pytest.mark.django_db

DOC = "e" * 64


def _agreements() -> object:
    """A listing picked, a block offer accepted, another countered (so declined), next to a bystander."""
    nat = National()
    bystander = nat.trader("Bystander", units=1000, cash_fen=10**9)
    _, s_acc, seller = nat.trader("Seller", units=300_000)
    buyer_p, b_acc, buyer = nat.trader("Buyer", cash_fen=10**10)
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=300, client_order_id="l1"
        )
        listing_post(
            actor=bystander[2],
            account=bystander[1],
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=100,
            client_order_id="l2",
        )
        listing_pick(actor=buyer, account=b_acc, listing=listing, client_order_id="p1")
    with clock.pinned(at(WEDNESDAY, 13, 30)):
        offer = dict(actor=seller, account=s_acc, asset=nat.cea, side="sell", counterparty=buyer_p)
        accepted = block_offer(**offer, price_fen=10_400, quantity=150_000, client_order_id="b1")
        block_accept(actor=buyer, account=b_acc, offer=accepted, client_order_id="b2")
        countered = block_offer(**offer, price_fen=9000, quantity=100_000, client_order_id="b3")
        counter = block_counter(actor=buyer, account=b_acc, offer=countered, price_fen=8500, client_order_id="b4")
        block_decline(actor=seller, offer=counter)
    return bystander[0]


def _auction() -> object:
    nat = National()
    bystander = nat.trader("Bystander", units=1000, cash_fen=10**9)
    _, s_acc, seller = nat.trader("Seller", units=5000)
    bidders = [nat.trader(f"Bidder {i}", cash_fen=10_000_000) for i in range(3)]
    with clock.pinned(at(WEDNESDAY, 9, 40)):
        auction = auction_announce(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            quantity=1000,
            reserve_price_fen=7500,
            opens_at=at(WEDNESDAY, 10),
            closes_at=at(WEDNESDAY, 11),
            client_order_id="auction",
        )
    with clock.pinned(at(WEDNESDAY, 10, 5)):
        for i, (price, quantity) in enumerate([(8000, 600), (7600, 600), (7500, 300)]):
            _, account, actor = bidders[i]
            bid = dict(price_fen=price, quantity=quantity, client_order_id=f"{i}")
            auction_bid(actor=actor, account=account, auction=auction, **bid)
    with clock.pinned(at(WEDNESDAY, 11)):
        auction_close(auction=auction)
    results = {e.payload["order"]: e.payload for e in ParticipantEvent.objects.filter(type="auction.result")}
    # The offer and the three bids, each to its own participant: 600 + 400 sold, the third bid released.
    assert sorted((r["side"], r["filled"]) for r in results.values()) == [
        ("buy", 0),
        ("buy", 400),
        ("buy", 600),
        ("sell", 1000),
    ]
    for order_id, result in results.items():
        order = Order.objects.get(pk=order_id)
        assert all(t["quantity"] for t in result["trades"])
        if order.side == "buy":
            assert sum(t["quantity"] for t in result["trades"]) == order.filled  # its own trades only
    return bystander[0]


def _freezes() -> object:
    from tests.helpers.market import IN_SESSION, make_exchange

    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        bystander = ex.trader("Bystander", units=100, cash_fen=1_000_000)
        _, account, _ = ex.trader("Holder", units=100)
        document = {"court": "Beijing No. 4 Intermediate People's Court", "document_sha256": DOC}
        frozen = judicial_freeze_create(
            actor=ex.market.registry_actor,
            account=account,
            asset=ex.cea,
            quantity=30,
            document_number="(2026) Jing 04 Zhi 1",
            **document,
        )
        judicial_freeze_release(
            actor=ex.market.registry_actor,
            freeze=frozen,
            document_number="(2026) Jing 04 Zhi 2",
            document_sha256=DOC,
        )
    return bystander[0]


def _non_trade() -> object:
    market = make_market(china_transfer_rules=True)
    bystander, bystander_account, _ = market.holder("Bystander")
    market.give(bystander_account, 100)
    _, source, actor = market.holder("Huaneng")
    _, destination, _ = market.holder("Datang")
    market.give(source, 1_000)
    officer_a, officer_b = market.registry_actor, actor_for(market.registry)
    application = dict(actor=actor, source=source, destination=destination, asset=market.cea, document_sha256=DOC)
    approved = non_trade_transfer_apply(**application, quantity=100, legal_basis="merger_split")
    reviewed = non_trade_transfer_review(actor=officer_a, transfer=approved)
    ap.approval_approve(actor=officer_b, approval=reviewed.approval)
    refused = non_trade_transfer_apply(**application, quantity=50, legal_basis="inheritance")
    non_trade_transfer_reject(actor=officer_a, transfer=refused, reason="The certificate is not notarised.")
    second = non_trade_transfer_apply(**application, quantity=20, legal_basis="inheritance")
    reviewed = non_trade_transfer_review(actor=officer_a, transfer=second)
    ap.approval_reject(actor=officer_b, approval=reviewed.approval, reason="Not enforceable yet.")
    return bystander


def _approvals() -> object:
    market = make_market()
    bystander, _, _ = market.holder("Bystander")
    _, account, _ = market.holder("Holder")

    def requested():
        return ap.approval_request(
            actor=market.registry_actor,
            operation=ApprovalOperation.CEA_ALLOCATE,
            params={"asset": market.cea.code, "rows": [[account.number, 5]], "idempotency_key": None, "memo": ""},
            quantity=5,
            summary="Allocate 5 t",
        )

    ap.approval_approve(actor=actor_for(market.registry), approval=requested())
    ap.approval_reject(actor=actor_for(market.registry), approval=requested(), reason="Wrong account.")
    return bystander


def _obligations() -> object:
    market = make_market()
    bystander, _, _ = market.holder("Bystander")
    year = comp.compliance_year_create(actor=market.registry_actor, year=2023)
    entities = [market.holder(f"Entity {i}") for i in range(2)]
    obligations = comp.entities_cover(actor=market.registry_actor, year=year, entities=[e[0] for e in entities])
    for obligation in obligations:
        comp.emissions_record(actor=market.registry_actor, obligation=obligation, quantity=100)
    comp.compliance_assess(actor=market.registry_actor, year=year, today=date(2025, 1, 1))
    return bystander


def _pledges() -> object:
    """Registered, valued down into a margin call, released; two past maturity defaulted, one enforced by agreement, one
    proposal declined."""
    ps = make_pledges()
    bystander = ps.ex.trader("Bystander", units=100, cash_fen=1_000_000)
    thu, fri = DAY + timedelta(days=1), DAY + timedelta(days=2)
    with clock.pinned(pledge_at(DAY)):
        ps.registered(500)  # LTV 60 % at 80.00
        released = ps.registered(100)
        matured = ps.registered(10, maturity_date=thu)
        refused = ps.registered(10, maturity_date=thu)
    ps.close_at(DAY, 7200)
    ps.close_at(thu, 6480)
    with clock.pinned(pledge_at(thu, 11)):
        pledge_release(actor=ps.bank[2], loan=released, repayment_reference="BOB-1")
    ps.close_at(fri, 5832)
    with clock.pinned(pledge_at(fri, 15, 40)):
        pledges_value()  # LTV 82.31 %: a margin call
    with clock.pinned(pledge_at(fri, 16)):
        for loan in (matured, refused):
            pledge_default(actor=ps.bank[2], loan=loan)
            pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=5832)
        pledge_enforcement_agree(actor=ps.borrower[2], loan=matured)
        pledge_enforcement_decline(actor=ps.borrower[2], loan=refused)
    return bystander[0]


def _pledge_amendments() -> object:
    """A registered pledge amended three times, each registered by the registry: a top-up, a partial release
    and an extension; next to a bystander, and with a top-up that the lender has not confirmed yet."""
    ps = make_pledges()
    bystander = ps.ex.trader("Bystander", units=100, cash_fen=1_000_000)
    with clock.pinned(pledge_at(DAY)):
        loan = ps.registered(500)
        ps.top_up(loan, 100)
        for change in (
            {"kind": "partial_release", "quantity": 50},
            {"kind": "extension", "maturity_date": loan.maturity_date + timedelta(days=90)},
        ):
            applied = pledge_amendment_request(actor=ps.borrower[2], loan=loan, **change)
            pledge_amendment_confirm(actor=ps.bank[2], amendment=applied, terms_digest=applied.terms_digest)
            pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=applied)
        pledge_amendment_request(actor=ps.borrower[2], loan=loan, kind="top_up", quantity=10)  # not registered
    return bystander[0]


def _amendment_steps() -> object:
    """Each step of an amendment short of its registration, next to a bystander: a top-up applied for and
    confirmed (then registered), an extension the lender turns down, a partial release the registry refuses
    once it is applied, and a top-up the borrower withdraws."""
    ps = make_pledges()
    bystander = ps.ex.trader("Bystander", units=100, cash_fen=1_000_000)
    borrower, lender, registry = ps.borrower[2], ps.bank[2], ps.ex.market.registry_actor
    with clock.pinned(pledge_at(DAY)):
        loan = ps.registered(500)
        top_up = pledge_amendment_request(actor=borrower, loan=loan, kind="top_up", quantity=100, serials=(501, 600))
        pledge_amendment_confirm(actor=lender, amendment=top_up, terms_digest=top_up.terms_digest)
        pledge_amendment_register(actor=registry, amendment=top_up)
        later = loan.maturity_date + timedelta(days=90)
        extension = pledge_amendment_request(actor=borrower, loan=loan, kind="extension", maturity_date=later)
        pledge_amendment_reject(actor=lender, amendment=extension, reason="Not before the next review.")
        release = pledge_amendment_request(actor=borrower, loan=loan, kind="partial_release", quantity=50)
        pledge_amendment_confirm(actor=lender, amendment=release, terms_digest=release.terms_digest)
        pledge_amendment_reject(actor=registry, amendment=release, reason="The release form is unsigned.")
        withdrawn = pledge_amendment_request(actor=borrower, loan=loan, kind="top_up", quantity=10)
        pledge_amendment_reject(actor=borrower, amendment=withdrawn, reason="  Applied by mistake.  ")
    return bystander[0]


CAUSES: dict[str, Callable[[], object]] = {
    "listing.picked": _agreements,
    "block_offer.received": _agreements,
    "block_offer.accepted": _agreements,
    "block_offer.declined": _agreements,
    "auction.result": _auction,
    "units.frozen": _freezes,
    "units.unfrozen": _freezes,
    "transfer.non_trade_approved": _non_trade,
    "transfer.non_trade_rejected": _non_trade,
    "approval.waiting": _approvals,
    "approval.approved": _approvals,
    "approval.rejected": _approvals,
    "obligation.status_changed": _obligations,
    "pledge.valued": _pledges,
    "pledge.margin_call": _pledges,
    "pledge.released": _pledges,
    "pledge.enforcement_proposed": _pledges,
    "pledge.enforcement_declined": _pledges,
    "pledge.enforced": _pledges,
    "pledge.registered": _pledges,
    "pledge.defaulted": _pledges,
    "pledge.amended": _pledge_amendments,
    "pledge.amendment_requested": _amendment_steps,
    "pledge.amendment_confirmed": _amendment_steps,
    "pledge.amendment_rejected": _amendment_steps,
}

#: The event types the issue lists: each is produced by its cause here or in test_projection's scenario.
ISSUE_TYPES = {
    "order.accepted",
    "order.filled",
    "order.cancelled",
    "order.expired",
    "listing.picked",
    "block_offer.received",
    "block_offer.accepted",
    "block_offer.declined",
    "auction.result",
    "trade.settled",
    "transfer.executed",
    "transfer.pending",
    "transfer.pending_executed",
    "transfer.non_trade_approved",
    "transfer.non_trade_rejected",
    "units.frozen",
    "units.unfrozen",
    "pledge.registered",
    "pledge.valued",
    "pledge.margin_call",
    "pledge.defaulted",
    "pledge.enforced",
    "pledge.released",
    "approval.waiting",
    "obligation.status_changed",
}


def test_every_type_the_issue_lists_has_a_route_and_a_real_cause_in_a_test():
    from exchange.events import event_types

    assert not ISSUE_TYPES - set(event_types()), sorted(ISSUE_TYPES - set(event_types()))
    assert not ISSUE_TYPES - set(CAUSES) - SCENARIO_TYPES, sorted(ISSUE_TYPES - set(CAUSES) - SCENARIO_TYPES)


@pytest.mark.parametrize("event_type", sorted(CAUSES))
def test_each_event_goes_only_to_the_participants_it_concerns(event_type):
    bystander = CAUSES[event_type]()

    events = list(ParticipantEvent.objects.filter(type=event_type))
    assert events, f"its cause produced no {event_type}"
    for event in events:
        assert event.participant_id != bystander.pk, f"the bystander received {event.type}: {event.payload}"
        assert _concerns(event), f"{event.type} #{event.number} went to {event.participant_id}: {event.payload}"
        if not event.type.startswith(("transfer.", "pledge.")):
            foreign = {n for n in _account_numbers(event.payload) if not _owns_account(event.participant_id, n)}
            assert not foreign, f"{event.type} shows {foreign} to {event.participant_id}"


def test_a_block_offer_reaches_its_counterparty_and_a_public_block_listing_nobody():
    nat = National()
    _, s_acc, seller = nat.trader("Seller", units=300_000)
    buyer_p, _, _ = nat.trader("Buyer", cash_fen=10**10)
    with clock.pinned(at(WEDNESDAY, 13, 30)):
        named = block_offer(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=10_400,
            quantity=150_000,
            counterparty=buyer_p,
            client_order_id="named",
        )
        block_offer(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=10_400,
            quantity=100_000,
            counterparty=None,
            client_order_id="public",
        )
    received = [(e.participant_id, e.payload) for e in ParticipantEvent.objects.filter(type="block_offer.received")]
    assert received == [
        (
            buyer_p.pk,
            {
                "offer": named.pk,
                "asset": nat.cea.code,
                "market": "CN-CEA",
                "side": "sell",
                "price": "104.00",
                "quantity": 150_000,
            },
        )
    ]


def test_a_listing_pick_tells_the_picker_and_the_listing_owner_their_own_side():
    nat = National()
    seller_p, s_acc, seller = nat.trader("Seller", units=1000)
    buyer_p, b_acc, buyer = nat.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=300, client_order_id="l"
        )
        picked = listing_pick(actor=buyer, account=b_acc, listing=listing, client_order_id="p")
    [trade] = picked.trades
    got = sorted(
        (e.participant_id, *(e.payload[k] for k in ("order", "side", "liquidity", "price", "quantity", "trade")))
        for e in ParticipantEvent.objects.filter(type="listing.picked")
    )
    assert got == sorted(
        [
            (buyer_p.pk, picked.order.pk, "buy", "taker", "80.00", 300, trade.pk),
            (seller_p.pk, listing.pk, "sell", "maker", "80.00", 300, trade.pk),
        ]
    )


def test_registry_participants_are_not_bystanders_of_their_own_approvals():
    """approval.waiting goes to the registry participant whose officers approve; holders see none."""
    market = make_market()
    _, account, _ = market.holder("Holder")
    ap.approval_request(
        actor=market.registry_actor,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={"asset": market.cea.code, "rows": [[account.number, 5]], "idempotency_key": None, "memo": ""},
        quantity=5,
        summary="Allocate 5 t",
    )
    assert list(ParticipantEvent.objects.filter(type="approval.waiting").values_list("participant_id", flat=True)) == [
        market.registry.pk
    ]


def test_every_registered_amendment_tells_the_borrower_and_the_lender_its_number_and_kind_and_nobody_else():
    # Given a pledge amended by a top-up, a partial release and an extension, and a fourth amendment only
    # applied for, next to a bystander
    bystander = _pledge_amendments()
    loan = PledgeLoan.objects.get()

    # Then each registered amendment is one pledge.amended event to each party, in order, and no other
    amended = ParticipantEvent.objects.filter(type="pledge.amended").order_by("id")
    got = [(e.participant_id, e.payload["number"], e.payload["kind"], e.payload["quantity"]) for e in amended]
    assert got == [
        (party, number, kind, quantity)
        for number, kind, quantity in [(1, "top_up", 100), (2, "partial_release", 50), (3, "extension", 0)]
        for party in sorted([loan.borrower_id, loan.lender_id])
    ]
    amendments = {a.number: a for a in PledgeAmendment.objects.filter(loan=loan, status="registered")}
    for event in amended:
        amendment = amendments[event.payload["number"]]
        assert (event.payload["pledge"], event.payload["amendment"], event.payload["reference"]) == (
            loan.pk,
            amendment.pk,
            f"{loan.registration_reference}-A{amendment.number:02d}",
        )
    top_up, release, extension = (amended[i].payload for i in (0, 2, 4))
    assert (top_up["serial_ranges"], top_up["pledged"], top_up["ltv_bp"]) == ([["501", "600"]], 600, "5000")
    assert (release["serial_ranges"], release["pledged"]) == ([["501", "550"]], 550)
    assert (extension["previous_maturity"], extension["maturity"]) == (
        loan.start_date.replace(year=loan.start_date.year + 1).isoformat(),
        loan.maturity_date.isoformat(),
    )
    assert not ParticipantEvent.objects.filter(participant=bystander, type__startswith="pledge.").exists()


def test_each_step_of_an_amendment_tells_the_borrower_and_the_lender_its_terms_and_nobody_else():
    # Given a top-up applied for, confirmed and registered, an extension the lender turned down, a partial
    # release the registry refused once applied and a top-up the borrower withdrew, next to a bystander
    bystander = _amendment_steps()
    loan = PledgeLoan.objects.get()
    top_up, extension, release, withdrawn = PledgeAmendment.objects.filter(loan=loan).order_by("id")
    parties = sorted([loan.borrower_id, loan.lender_id])
    later = (loan.maturity_date + timedelta(days=90)).isoformat()
    terms = {
        top_up: {"kind": "top_up", "quantity": 100, "serials": ["501", "600"], "maturity": None},
        extension: {"kind": "extension", "quantity": 0, "serials": None, "maturity": later},
        release: {"kind": "partial_release", "quantity": 50, "serials": None, "maturity": None},
        withdrawn: {"kind": "top_up", "quantity": 10, "serials": None, "maturity": None},
    }

    def payload(amendment: PledgeAmendment, **extra: object) -> dict[str, object]:
        digest = amendment.terms_digest
        return {"pledge": loan.pk, "amendment": amendment.pk, **terms[amendment], "terms_digest": digest, **extra}

    def events(event_type: str) -> list[tuple[int, dict[str, object]]]:
        return [(e.participant_id, e.payload) for e in ParticipantEvent.objects.filter(type=event_type).order_by("id")]

    # Then each step is one event of its own type to each party, with the amendment's terms, in order
    assert events("pledge.amendment_requested") == [
        (party, payload(amendment)) for amendment in (top_up, extension, release, withdrawn) for party in parties
    ]
    assert events("pledge.amendment_confirmed") == [
        (party, payload(amendment)) for amendment in (top_up, release) for party in parties
    ]
    assert events("pledge.amendment_rejected") == [
        (party, payload(amendment, reason=reason))
        for amendment, reason in [
            (extension, "Not before the next review."),
            (release, "The release form is unsigned."),
            (withdrawn, "Applied by mistake."),
        ]
        for party in parties
    ]
    # And only the registered top-up is amended; the bystander receives nothing about the pledge
    assert [e.payload["amendment"] for e in ParticipantEvent.objects.filter(type="pledge.amended")] == [top_up.pk] * 2
    assert len({a.terms_digest for a in terms}) == 4  # each event names its own amendment's terms
    assert not ParticipantEvent.objects.filter(participant=bystander, type__startswith="pledge.").exists()
