"""China's trading modes on the shipped rulebooks: listing agreement, block agreement, T+1 and settlement by the
registry, the calendar, eligibility per market and position limits."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import DomainError
from exchange.models import AuditEvent, Order, OrderStatus, SettlementStatus, Trade
from exchange.services.agreements import (
    block_accept,
    block_counter,
    block_decline,
    block_offer,
    listing_pick,
    listing_post,
)
from exchange.services.calendar import calendar_year_load
from exchange.services.cash import cash_asset, cash_deposit
from exchange.services.issuance import cea_vintage_create
from exchange.services.listings import asset_list
from exchange.services.orders import order_place
from exchange.services.settlement import settlement_run
from tests.helpers.ledger import assert_reconciled, balance, make_market, snapshot

pytestmark = pytest.mark.django_db

WEDNESDAY = date(2026, 11, 25)
REFERENCE = 8000  # 80.00 yuan


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clock.MARKET_TZ)


class National:
    """CEA-2024 listed on the national allowance market (CN-CEA), traders with units and cash."""

    def __init__(self) -> None:
        with clock.pinned(at(WEDNESDAY, 9)):
            self.market = make_market()
            self.cea = self.market.cea
            operator = self.market.holder("Shanghai exchange", kind=ParticipantKind.EXCHANGE)[2]
            self.operator = operator
            asset_list(actor=operator, asset=self.cea, reference_price_fen=REFERENCE)
        self.n = 0

    def trader(self, name: str, *, units: int = 0, cash_fen: int = 0, kind=ParticipantKind.COMPLIANCE_ENTITY):
        participant, account, actor = self.market.holder(name, kind=kind)
        with clock.pinned(at(WEDNESDAY, 9)):
            if units:
                self.market.give(account, units)
            if cash_fen:
                cash_deposit(actor=self.operator, account=account, amount_fen=cash_fen, reference=f"d-{name}")
        return participant, account, actor

    def cid(self) -> str:
        self.n += 1
        return f"c{self.n}"


@pytest.fixture
def nat() -> National:
    return National()


def test_a_pick_fills_the_chosen_listing_and_no_other(nat):
    _, a_acc, a = nat.trader("Seller A", units=1000)
    _, b_acc, b = nat.trader("Seller B", units=1000)
    _, buyer_acc, buyer = nat.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        first = listing_post(
            actor=a, account=a_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=300, client_order_id=nat.cid()
        )
        second = listing_post(
            actor=b, account=b_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=200, client_order_id=nat.cid()
        )
        picked = listing_pick(actor=buyer, account=buyer_acc, listing=second, client_order_id=nat.cid())

    assert [(t.sell_order_id, t.quantity, t.price_fen, t.trading_mode) for t in picked.trades] == [
        (second.pk, 200, 8000, "listing")
    ]
    assert Order.objects.get(pk=second.pk).status == OrderStatus.FILLED
    first_now = Order.objects.get(pk=first.pk)
    assert (first_now.status, first_now.filled) == (OrderStatus.OPEN, 0)
    # Trades move nothing: A's units are still held for its listing, B's for its fill, the buyer's cash too.
    assert balance(a_acc, nat.cea) == (1000, 300)
    assert balance(b_acc, nat.cea) == (1000, 200)
    assert balance(buyer_acc, cash_asset()) == (10_000_000, 1_609_600)  # 200 x 80.00 + 0.6 %
    assert_reconciled()


def test_a_pick_at_a_level_fills_its_listings_in_time_order(nat):
    _, a_acc, a = nat.trader("Seller A", units=1000)
    _, b_acc, b = nat.trader("Seller B", units=1000)
    _, buyer_acc, buyer = nat.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        older = listing_post(
            actor=a, account=a_acc, asset=nat.cea, side="sell", price_fen=8100, quantity=100, client_order_id=nat.cid()
        )
        whole = listing_post(
            actor=b,
            account=b_acc,
            asset=nat.cea,
            side="sell",
            price_fen=8100,
            quantity=100,
            client_order_id=nat.cid(),
            partial_allowed=False,
        )
        newer = listing_post(
            actor=a, account=a_acc, asset=nat.cea, side="sell", price_fen=8100, quantity=100, client_order_id=nat.cid()
        )
        picked = listing_pick(
            actor=buyer,
            account=buyer_acc,
            asset=nat.cea,
            side="sell",
            price_fen=8100,
            quantity=150,
            client_order_id=nat.cid(),
        )

    # 100 from the oldest; the whole-only listing can't give 50 and is passed over; 50 from the newest.
    assert [(t.sell_order_id, t.quantity) for t in picked.trades] == [(older.pk, 100), (newer.pk, 50)]
    assert Order.objects.get(pk=whole.pk).filled == 0
    assert Order.objects.get(pk=newer.pk).remaining == 50


def test_a_picked_listing_is_refused_to_the_next_and_nothing_changes(nat):
    _, s_acc, seller = nat.trader("Seller", units=1000)
    _, b1_acc, b1 = nat.trader("Buyer 1", cash_fen=10_000_000)
    _, b2_acc, b2 = nat.trader("Buyer 2", cash_fen=10_000_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=100,
            partial_allowed=False,
            client_order_id=nat.cid(),
        )
        with pytest.raises(DomainError) as partial:
            listing_pick(actor=b1, account=b1_acc, listing=listing, quantity=50, client_order_id=nat.cid())
        listing_pick(actor=b1, account=b1_acc, listing=listing, client_order_id=nat.cid())
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            listing_pick(actor=b2, account=b2_acc, listing=listing, client_order_id=nat.cid())

    assert partial.value.code == "partial_not_allowed"
    assert refused.value.code == "listing_not_available"
    assert snapshot() == before
    assert Trade.objects.count() == 1


def test_listing_rules_size_band_and_session(nat):
    _, acc, seller = nat.trader("Seller", units=200_000)
    cases = [
        (at(WEDNESDAY, 10), {"quantity": 100_000}, "above_maximum_size"),
        (at(WEDNESDAY, 10), {"price_fen": 8801}, "price_out_of_band"),
        (at(WEDNESDAY, 12), {}, "market_closed"),
        (at(date(2026, 11, 28), 10), {}, "market_closed"),  # a Saturday
    ]
    before = snapshot()
    for moment, change, code in cases:
        args = {"side": "sell", "price_fen": 8000, "quantity": 100} | change
        with clock.pinned(moment), pytest.raises(DomainError) as refused:
            listing_post(actor=seller, account=acc, asset=nat.cea, client_order_id=nat.cid(), **args)
        assert refused.value.code == code, change
    assert snapshot() == before


def test_no_session_on_a_public_holiday(nat):
    calendar_year_load(actor=Actor.system("test"), code="CN", year=2026)
    _, acc, seller = nat.trader("Seller", units=1000)
    with clock.pinned(at(date(2026, 10, 1), 10)), pytest.raises(DomainError) as refused:  # National Day, Thursday
        listing_post(
            actor=seller,
            account=acc,
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=10,
            client_order_id=nat.cid(),
        )
    assert refused.value.code == "market_closed"
    with clock.pinned(at(date(2026, 10, 9), 10)):  # the Friday after: open
        assert (
            listing_post(
                actor=seller,
                account=acc,
                asset=nat.cea,
                side="sell",
                price_fen=8000,
                quantity=10,
                client_order_id=nat.cid(),
            ).status
            == OrderStatus.OPEN
        )


def test_the_national_market_has_no_continuous_book(nat):
    _, acc, seller = nat.trader("Seller", units=1000)
    with clock.pinned(at(WEDNESDAY, 10)), pytest.raises(DomainError) as refused:
        order_place(
            actor=seller,
            account=acc,
            asset=nat.cea,
            side="sell",
            mode="listing",
            price_fen=8000,
            quantity=10,
            client_order_id="x",
        )
    assert refused.value.code == "mode_not_enabled"


# --- block agreement -------------------------------------------------------------------------------------
def test_a_block_offer_outside_13_to_15_or_under_100000_t_is_refused(nat):
    _, acc, seller = nat.trader("Seller", units=300_000)
    buyer = nat.trader("Buyer", cash_fen=10**10)[0]
    before = snapshot()
    cases = [
        (at(WEDNESDAY, 10), {}, "market_closed"),
        (at(WEDNESDAY, 15, 1), {}, "market_closed"),
        (at(WEDNESDAY, 13, 30), {"quantity": 99_999}, "below_minimum_size"),
        (at(WEDNESDAY, 13, 30), {"price_fen": 10_401}, "price_out_of_band"),
        (at(WEDNESDAY, 13, 30), {"price_fen": 5599}, "price_out_of_band"),
    ]
    for moment, change, code in cases:
        args = {"side": "sell", "price_fen": 8000, "quantity": 100_000} | change
        with clock.pinned(moment), pytest.raises(DomainError) as refused:
            block_offer(actor=seller, account=acc, asset=nat.cea, counterparty=buyer, client_order_id=nat.cid(), **args)
        assert refused.value.code == code, (moment, change)
    assert snapshot() == before
    assert AuditEvent.objects.filter(action="block.offer").count() == 0


def test_a_block_offer_to_a_named_counterparty_is_accepted_whole(nat):
    _, s_acc, seller = nat.trader("Seller", units=300_000)
    buyer_p, b_acc, buyer = nat.trader("Buyer", cash_fen=10**10)
    _, o_acc, other = nat.trader("Other", cash_fen=10**10)
    with clock.pinned(at(WEDNESDAY, 13, 30)):
        offer = block_offer(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=10_400,
            quantity=150_000,
            counterparty=buyer_p,
            client_order_id=nat.cid(),
        )
        with pytest.raises(DomainError) as not_theirs:
            block_accept(actor=other, account=o_acc, offer=offer, client_order_id=nat.cid())
        accepted = block_accept(actor=buyer, account=b_acc, offer=offer, client_order_id=nat.cid())

    assert not_theirs.value.code == "offer_not_found"
    [trade] = accepted.trades
    assert (trade.quantity, trade.price_fen, trade.trading_mode, trade.mode) == (150_000, 10_400, "block", "block")
    assert Order.objects.get(pk=offer.pk).status == OrderStatus.FILLED
    assert_reconciled()


def test_a_declined_offer_releases_its_reservation_and_a_counter_goes_back(nat):
    seller_p, s_acc, seller = nat.trader("Seller", units=300_000)
    buyer_p, b_acc, buyer = nat.trader("Buyer", cash_fen=10**10)
    with clock.pinned(at(WEDNESDAY, 13, 30)):
        offer = block_offer(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=9000,
            quantity=100_000,
            counterparty=buyer_p,
            client_order_id=nat.cid(),
        )
        assert balance(s_acc, nat.cea) == (300_000, 100_000)
        counter = block_counter(actor=buyer, account=b_acc, offer=offer, price_fen=8500, client_order_id=nat.cid())
        assert balance(s_acc, nat.cea) == (300_000, 0)
        assert (counter.side, counter.counterparty_id, counter.price_fen) == ("buy", seller_p.pk, 8500)
        declined = block_decline(actor=seller, offer=counter)

    assert Order.objects.get(pk=offer.pk).end_reason == "declined"
    assert declined.end_reason == "declined"
    assert balance(b_acc, cash_asset()) == (10**10, 0)
    assert Trade.objects.count() == 0


# --- T+1 and settlement by the registry --------------------------------------------------------------------
def test_units_bought_today_are_sellable_tomorrow_and_settle_after_the_close(nat):
    _, s_acc, seller = nat.trader("Seller", units=1000)
    _, b_acc, buyer = nat.trader("Buyer", cash_fen=10_000_000)
    registry = nat.market.registry_actor
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=100,
            client_order_id=nat.cid(),
        )
        listing_pick(actor=buyer, account=b_acc, listing=listing, client_order_id=nat.cid())
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        # The exchange operator no longer settles; the registry's run mid-day leaves today's trades alone.
        with pytest.raises(DomainError) as wrong:
            settlement_run(actor=nat.operator)
        assert wrong.value.code == "wrong_participant_kind"
        assert settlement_run(actor=registry).status == SettlementStatus.EMPTY
        with pytest.raises(DomainError) as not_yet:
            listing_post(
                actor=buyer,
                account=b_acc,
                asset=nat.cea,
                side="sell",
                price_fen=8000,
                quantity=100,
                client_order_id=nat.cid(),
            )
        assert not_yet.value.code == "insufficient_available"
    with clock.pinned(at(WEDNESDAY, 15, 5)):
        batch = settlement_run(actor=registry)
    assert (batch.status, batch.trades_count) == (SettlementStatus.COMPLETED, 1)
    assert balance(b_acc, nat.cea) == (100, 0)
    with clock.pinned(at(date(2026, 11, 26), 10)):
        resale = listing_post(
            actor=buyer,
            account=b_acc,
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=100,
            client_order_id=nat.cid(),
        )
    assert resale.status == OrderStatus.OPEN
    assert_reconciled()


# --- eligibility and position limits --------------------------------------------------------------------
def test_eligibility_follows_each_markets_rulebook(nat):
    _, inv_acc, investor = nat.trader("Fund", cash_fen=10_000_000, kind=ParticipantKind.INVESTOR)
    before = snapshot()
    with clock.pinned(at(WEDNESDAY, 10)), pytest.raises(DomainError) as refused:
        listing_post(
            actor=investor,
            account=inv_acc,
            asset=nat.cea,
            side="buy",
            price_fen=8000,
            quantity=10,
            client_order_id=nat.cid(),
        )
    assert refused.value.code == "not_eligible"
    assert (refused.value.details["rule"], refused.value.details["market"]) == ("allowed_kinds", "CN-CEA")
    assert snapshot() == before

    # The Beijing pilot admits investors to its continuous public trading.
    with clock.pinned(at(WEDNESDAY, 9)):
        bea = cea_vintage_create(actor=nat.market.registry_actor, vintage=2025, market="BJ-BEA")
        asset_list(actor=nat.operator, asset=bea, reference_price_fen=10_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        placed = order_place(
            actor=investor,
            account=inv_acc,
            asset=bea,
            side="buy",
            mode="listing",
            price_fen=10_000,
            quantity=10,
            client_order_id="bea-1",
        )
    assert placed.order.status == OrderStatus.OPEN


def test_beijing_position_limit_is_the_allocation_plus_one_million_tonnes(nat):
    _, acc, entity = nat.trader("Beijing entity", cash_fen=0)
    with clock.pinned(at(WEDNESDAY, 9)):
        bea = cea_vintage_create(actor=nat.market.registry_actor, vintage=2025, market="BJ-BEA")
        asset_list(actor=nat.operator, asset=bea, reference_price_fen=100)  # 1.00 yuan, to keep the cash small
        nat.market.give(acc, 5000, asset=bea)
        cash_deposit(actor=nat.operator, account=acc, amount_fen=10**9, reference="bea-cash")
    before = snapshot()
    with clock.pinned(at(WEDNESDAY, 10)), pytest.raises(DomainError) as refused:
        order_place(
            actor=entity,
            account=acc,
            asset=bea,
            side="buy",
            mode="block",
            price_fen=100,
            quantity=1_000_001,
            client_order_id="too-much",
        )
    assert refused.value.code == "position_limit_exceeded"
    assert refused.value.details["limit"] == 1_005_000
    assert refused.value.details["position"] == 5000
    assert snapshot() == before
    with clock.pinned(at(WEDNESDAY, 10)):
        placed = order_place(
            actor=entity,
            account=acc,
            asset=bea,
            side="buy",
            mode="block",
            price_fen=100,
            quantity=1_000_000,
            client_order_id="at-the-limit",
        )
        assert placed.order.status == OrderStatus.OPEN
        with pytest.raises(DomainError) as open_buys_count:
            order_place(
                actor=entity,
                account=acc,
                asset=bea,
                side="buy",
                mode="listing",
                price_fen=100,
                quantity=1,
                client_order_id="one-more",
            )
    assert open_buys_count.value.code == "position_limit_exceeded"


def test_units_of_a_market_are_actor_checked(nat):
    """An exchange operator is not a trader anywhere (kinds outside every market's rulebook)."""
    _, acc, _ = nat.trader("Seller", units=100)
    with clock.pinned(at(WEDNESDAY, 10)), pytest.raises(DomainError) as refused:
        listing_post(
            actor=nat.operator,
            account=acc,
            asset=nat.cea,
            side="sell",
            price_fen=8000,
            quantity=10,
            client_order_id="op",
        )
    assert refused.value.code in ("wrong_participant_kind", "account_not_found")


@pytest.mark.django_db(transaction=True)
def test_two_counterparties_picking_one_listing_at_once_one_fills():
    from tests.helpers.concurrency import attempt, run_workers

    nat = National()
    _, s_acc, seller = nat.trader("Seller", units=1000)
    buyers = [nat.trader(f"Buyer {i}", cash_fen=10_000_000)[1:] for i in range(2)]
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=500, client_order_id="L"
        )

        def work(i: int) -> list[str]:
            account, actor = buyers[i]
            return [
                attempt(
                    lambda: listing_pick(actor=actor, account=account, listing=listing, client_order_id=f"pick-{i}")
                )
            ]

        outcomes = run_workers(2, work)

    assert sorted(outcomes) == ["listing_not_available", "ok"]
    assert Trade.objects.count() == 1
    assert Order.objects.get(pk=listing.pk).filled == 500
    assert balance(s_acc, nat.cea) == (1000, 500)
    assert_reconciled()
