"""The demo trading bots against a live server: they quote inside the band, trade, and back off on errors."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from core import clock
from exchange.bots import MarketMaker, Taker, clamp_to_band, middle
from exchange.client import Client
from exchange.models import Auction, Order, OrderStatus, Rulebook, RulebookMode, Trade
from exchange.services.session_close import clear_sessions_cache
from tests.helpers.api import token_for
from tests.helpers.live import in_session, make_live_market

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def market(live_server):
    with in_session():
        live = make_live_market(live_server.url)
        _, maker_account, maker_actor = live.exchange.trader("Maker Co", units=5_000, cash_fen=100_000_000)
        live.maker_account = maker_account
        live.maker_token = token_for(maker_actor)
        yield live


def test_clamp_keeps_prices_within_three_percent_of_the_close():
    assert clamp_to_band(9_000, 8_000) == 8_240
    assert clamp_to_band(7_000, 8_000) == 7_761
    assert clamp_to_band(8_100, 8_000) == 8_100


@pytest.mark.django_db(transaction=False)
def test_middle_of_the_book():
    def level(price):
        return [{"price": price, "quantity": 1, "orders": 1}]

    book = {"asset": "A", "mode": "listing", "bids": level("80.00"), "asks": level("80.50"), "previous_close": "79.00"}
    assert middle(book) == 8_025
    assert middle({**book, "asks": []}) == 8_000
    assert middle({**book, "asks": [], "bids": []}) == 7_900
    assert middle({**book, "asks": [], "bids": [], "previous_close": None}) is None


def test_the_market_maker_quotes_both_sides_inside_the_band_and_the_taker_trades(market):
    with Client(market.url, market.maker_token) as maker_client, Client(market.url, market.buyer_token) as taker_client:
        maker = MarketMaker(maker_client, ["CEA-2024"], interval=0.01, seed=1)
        taker = Taker(taker_client, ["CEA-2024"], interval=0.01, seed=3)
        # when the market maker quotes
        assert maker.tick() < 0.1
        quotes = list(Order.objects.filter(account=market.maker_account, status=OrderStatus.OPEN))
        # and the taker moves a few times (it has cash only: its sells are refused and passed over)
        for _ in range(6):
            taker.tick()
        # and the market maker quotes again
        maker.tick()

    assert sorted(o.side for o in quotes) == ["buy", "sell"]
    assert all(7_761 <= o.price_fen <= 8_240 for o in quotes)
    assert maker.failures == taker.failures == 0
    assert Trade.objects.filter(buy_order__account=market.buyer, sell_order__account=market.maker_account).exists()
    open_sides = sorted(
        Order.objects.filter(account=market.maker_account, status=OrderStatus.OPEN).values_list("side", flat=True)
    )
    assert open_sides == ["buy", "sell"]


def test_a_refused_bot_backs_off_and_does_not_raise(market):
    with Client(market.url, "gl_wrong_token", retries=0) as client:
        bot = MarketMaker(client, ["CEA-2024"], interval=1.0, seed=1)
        delays = [bot.tick() for _ in range(3)]

    assert bot.failures == 3
    assert delays[0] >= 1.6
    assert delays[2] >= 6.4
    assert not Order.objects.exists()


def test_a_bot_without_a_server_backs_off():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with Client(f"http://127.0.0.1:{port}", "gl_x_y", retries=0) as client:
        bot = Taker(client, ["CEA-2024"], interval=1.0, seed=1)
        delay = bot.tick()

    assert bot.failures == 1
    assert delay >= 1.6


@pytest.mark.django_db(transaction=False)
def test_the_market_maker_keeps_its_quotes_from_its_events_and_requotes_when_one_fills():
    maker = MarketMaker(Client("http://127.0.0.1:9", "gl_x_y", retries=0), ["CEA-2024"], interval=60, seed=1)
    maker.quotes, maker.streaming = {}, True
    accepted = {"order": 7, "asset": "CEA-2024", "side": "sell", "price": "80.10"}
    maker.on_event({"id": 1, "type": "order.accepted", "data": accepted})
    assert maker.quotes == {7: {"asset": "CEA-2024", "side": "sell", "price": "80.10"}}
    assert not maker.wake.is_set()
    part = {"order": 7, "trade": 1, "quantity": 10, "price": "80.10", "order_status": "open"}
    maker.on_event({"id": 2, "type": "order.filled", "data": part})
    assert 7 in maker.quotes  # partly filled: the quote stands
    assert not maker.wake.is_set()
    maker.on_event({"id": 3, "type": "order.filled", "data": {**part, "trade": 2, "order_status": "filled"}})
    assert maker.quotes == {}  # gone: quote again now
    assert maker.wake.is_set()
    assert [e["id"] for e in maker.fills] == [2, 3]


def test_the_market_maker_offers_the_taker_a_block_by_name_and_the_taker_answers_it(market):
    _, taker_account, taker_actor = market.exchange.trader("Taker Co", cash_fen=1_000_000_000)
    market.exchange.market.give(market.maker_account, 100_000)
    with Client(market.url, market.maker_token) as maker_client, Client(market.url, token_for(taker_actor)) as tc:
        maker = MarketMaker(
            maker_client,
            [],
            interval=0.01,
            seed=1,
            counterparty=taker_account.participant_id,
            blocks={"CEA-2024": 100_000},
        )
        taker = Taker(tc, ["CEA-2024"], interval=0.01, seed=3)
        maker.offer_block("CEA-2024")
        maker.offer_block("CEA-2024")  # one open offer at a time
        (offer,) = Order.objects.filter(account=market.maker_account, trading_mode="block")
        taker.answer_blocks()

    offer.refresh_from_db()
    assert (offer.counterparty_id, offer.quantity, offer.price_fen) == (taker_account.participant_id, 100_000, 8_000)
    trades = list(Trade.objects.filter(trading_mode="block"))
    if trades:
        assert (offer.status, trades[0].buy_order.account_id, trades[0].quantity) == (
            "filled",
            taker_account.pk,
            100_000,
        )
    else:
        assert (offer.status, offer.filled) == ("cancelled", 0)


def test_the_market_maker_runs_an_auction_the_taker_bids_and_it_closes_after_its_window(market):
    rulebook = Rulebook.objects.get(market__code="XT-CDA")
    RulebookMode.objects.create(
        rulebook=rulebook, mode="auction", sessions="00:00-24:00", min_quantity=1, buyer_fee_bp=60, seller_fee_bp=60
    )
    clear_sessions_cache()
    with Client(market.url, market.maker_token) as maker_client, Client(market.url, market.buyer_token) as taker_client:
        maker = MarketMaker(maker_client, [], interval=0.01, seed=1, auction_assets=["CEA-2024"])
        taker = Taker(taker_client, ["CEA-2024"], interval=0.01, seed=3)
        maker.now = taker.now = clock.now  # type: ignore[method-assign]
        maker.auction("CEA-2024")
        (auction,) = Auction.objects.all()
        clock.set_pinned(clock.now() + timedelta(seconds=0.5))
        taker.bid()
        taker.bid()  # one bid an auction
        clock.set_pinned(auction.closes_at + timedelta(seconds=1))
        maker.auction("CEA-2024")

    auction.refresh_from_db()
    (trade,) = Trade.objects.filter(trading_mode="auction")
    assert (auction.status, trade.buy_order.account_id, trade.sell_order.account_id) == (
        "closed",
        market.buyer.pk,
        market.maker_account.pk,
    )
    assert trade.quantity == min(auction.quantity, 200)
    assert trade.price_fen >= auction.reserve_price_fen
    assert Auction.objects.filter(status="open").count() == 1  # and it announced the next one
