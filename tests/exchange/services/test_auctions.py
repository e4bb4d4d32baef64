"""One-way auction on the national allowance market: allocation by price then time, losing bids released."""

from __future__ import annotations

from datetime import date

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import AuctionStatus, Order, OrderStatus, Trade
from exchange.services.auctions import auction_announce, auction_bid, auction_close
from exchange.services.cash import cash_asset
from exchange.services.settlement import settlement_run
from tests.exchange.services.test_agreements import WEDNESDAY, National, at
from tests.helpers.ledger import assert_reconciled, balance, snapshot

pytestmark = pytest.mark.django_db


def _auction(nat, seller, s_acc, quantity=1000, reserve=7500):
    with clock.pinned(at(WEDNESDAY, 9, 40)):
        return auction_announce(
            actor=seller,
            account=s_acc,
            asset=nat.cea,
            quantity=quantity,
            reserve_price_fen=reserve,
            opens_at=at(WEDNESDAY, 10),
            closes_at=at(WEDNESDAY, 11),
            client_order_id="auction",
        )


def test_an_auction_allocates_by_price_then_time_and_releases_losing_bids():
    nat = National()
    _, s_acc, seller = nat.trader("Seller", units=5000)
    bidders = [nat.trader(f"Bidder {i}", cash_fen=10_000_000) for i in range(4)]
    auction = _auction(nat, seller, s_acc)
    assert balance(s_acc, nat.cea) == (5000, 1000)
    bids = {}
    with clock.pinned(at(WEDNESDAY, 10, 5)):
        for i, (price, q) in enumerate([(7600, 500), (8000, 400), (7600, 300), (7500, 600)]):
            _, acc, actor = bidders[i]
            bids[i] = auction_bid(
                actor=actor, account=acc, auction=auction, price_fen=price, quantity=q, client_order_id=f"bid-{i}"
            )
    with clock.pinned(at(WEDNESDAY, 10, 59)), pytest.raises(DomainError) as early:
        auction_close(auction=auction)
    assert early.value.code == "auction_still_open"
    with clock.pinned(at(WEDNESDAY, 11, 0)):
        closed = auction_close(auction=auction)

    # 400 at 80.00 (the best price), then 500 at 76.00 (earlier of the two 76.00 bids), then 100 of the later.
    assert [(t.buy_order_id, t.price_fen, t.quantity) for t in Trade.objects.order_by("id")] == [
        (bids[1].pk, 8000, 400),
        (bids[0].pk, 7600, 500),
        (bids[2].pk, 7600, 100),
    ]
    assert (closed.status, closed.sold, closed.clearing_price_fen) == (AuctionStatus.CLOSED, 1000, 7600)
    # The losing bid's cash is released whole; the partly filled bid keeps only what its fill needs.
    assert balance(bidders[3][1], cash_asset()) == (10_000_000, 0)
    assert Order.objects.get(pk=bids[3].pk).status == OrderStatus.CANCELLED
    assert balance(bidders[2][1], cash_asset()) == (10_000_000, 7600 * 100 + 4560)  # 0.6 % fee
    assert balance(s_acc, nat.cea) == (5000, 1000)
    with clock.pinned(at(WEDNESDAY, 15, 5)):
        settlement_run()
    assert balance(bidders[1][1], nat.cea) == (400, 0)
    assert balance(s_acc, nat.cea) == (4000, 0)
    assert_reconciled()


def test_unsold_quantity_returns_and_bids_below_reserve_or_outside_the_window_are_refused():
    nat = National()
    _, s_acc, seller = nat.trader("Seller", units=5000)
    _, b_acc, bidder = nat.trader("Bidder", cash_fen=10_000_000)
    auction = _auction(nat, seller, s_acc)
    before = snapshot()
    for moment, price, code in [
        (at(WEDNESDAY, 9, 50), 8000, "auction_not_open"),
        (at(WEDNESDAY, 10, 30), 7400, "bid_below_reserve"),
        (at(WEDNESDAY, 11, 0), 8000, "auction_not_open"),
    ]:
        with clock.pinned(moment), pytest.raises(DomainError) as refused:
            auction_bid(
                actor=bidder,
                account=b_acc,
                auction=auction,
                price_fen=price,
                quantity=10,
                client_order_id=f"b-{moment.minute}-{price}",
            )
        assert refused.value.code == code
    assert snapshot() == before
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        auction_bid(actor=bidder, account=b_acc, auction=auction, price_fen=7500, quantity=300, client_order_id="b-ok")
    with clock.pinned(at(WEDNESDAY, 11, 30)):
        closed = auction_close(auction=auction)
    assert (closed.sold, closed.quantity) == (300, 1000)
    assert balance(s_acc, nat.cea) == (5000, 300)  # 700 unsold returned; 300 await settlement
    assert date(2026, 11, 25) == closed.closed_at.astimezone(clock.MARKET_TZ).date()
