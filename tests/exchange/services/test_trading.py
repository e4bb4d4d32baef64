"""Orders: every rule refused with its code and nothing held; fills, priority, cancel, session close."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from accounts.models import ParticipantKind
from core import clock
from core.errors import DomainError
from exchange.models import AuditEvent, Order, OrderStatus, Trade
from exchange.services.orders import order_cancel
from exchange.services.session_close import orders_cancel_at_close
from tests.helpers.ledger import assert_reconciled, balance, blocks, snapshot
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ex():
    return make_exchange()


def test_sell_holds_serial_units_and_buy_holds_cash_with_fee(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)

    ex.order(seller, seller_acc, "sell", 8100, 300)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)

    assert balance(seller_acc, ex.cea) == (1000, 300)
    assert blocks(ex.cea, seller_acc) == [
        (1, 300, seller_acc.number, "held"),
        (301, 1000, seller_acc.number, "available"),
    ]
    # 80.00 x 100 = 8,000.00 yuan plus 0.6% fee 48.00 = 8,048.00 yuan = 804,800 fen
    assert balance(buyer_acc, ex.cny) == (10_000_000, 804_800)
    assert Trade.objects.count() == 0


def test_crossing_orders_trade_at_the_resting_price_and_move_nothing(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    resting = ex.order(seller, seller_acc, "sell", 7900, 100).order

    placed = ex.order(buyer, buyer_acc, "buy", 8000, 100)

    (trade,) = placed.trades
    assert (trade.price_fen, trade.quantity, trade.sell_order_id, trade.aggressor) == (7900, 100, resting.pk, "buy")
    assert (trade.turnover_fen, trade.buyer_fee_fen, trade.seller_fee_fen) == (790_000, 4740, 4740)
    assert placed.order.status == OrderStatus.FILLED
    assert Order.objects.get(pk=resting.pk).status == OrderStatus.FILLED
    assert balance(seller_acc, ex.cea) == (1000, 100)  # trades move nothing until settlement
    assert balance(buyer_acc, ex.cea) == (0, 0)


def test_partial_fill_leaves_the_rest_resting(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 60)

    placed = ex.order(buyer, buyer_acc, "buy", 8000, 100)

    assert [t.quantity for t in placed.trades] == [60]
    order = Order.objects.get(pk=placed.order.pk)
    assert (order.status, order.filled, order.remaining) == (OrderStatus.OPEN, 60, 40)


def test_price_time_priority_on_a_crafted_book(ex):
    sellers = [ex.trader(f"S{i}", units=100) for i in range(4)]
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=50_000_000)
    second_best_early = ex.order(sellers[0][2], sellers[0][1], "sell", 8050, 10).order
    best_late = ex.order(sellers[1][2], sellers[1][1], "sell", 8000, 10).order
    second_best_late = ex.order(sellers[2][2], sellers[2][1], "sell", 8050, 10).order
    too_dear = ex.order(sellers[3][2], sellers[3][1], "sell", 8100, 10).order

    placed = ex.order(buyer, buyer_acc, "buy", 8050, 25)

    assert [(t.sell_order_id, t.price_fen, t.quantity) for t in placed.trades] == [
        (best_late.pk, 8000, 10),
        (second_best_early.pk, 8050, 10),
        (second_best_late.pk, 8050, 5),
    ]
    assert Order.objects.get(pk=too_dear.pk).filled == 0


def test_own_orders_never_match(ex):
    _, acc, actor = ex.trader("Both sides", units=100, cash_fen=10_000_000)
    ex.order(actor, acc, "sell", 8000, 10)

    placed = ex.order(actor, acc, "buy", 8000, 10)

    assert placed.trades == []
    assert Order.objects.filter(status=OrderStatus.OPEN).count() == 2


def test_cancel_releases_only_the_unfilled_part(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    order = ex.order(seller, seller_acc, "sell", 8000, 100).order
    ex.order(buyer, buyer_acc, "buy", 8000, 30)

    order_cancel(actor=seller, order=order)

    assert balance(seller_acc, ex.cea) == (1000, 30)  # the 30 sold stay held until settlement
    order.refresh_from_db()
    assert (order.status, order.end_reason, order.filled) == (OrderStatus.CANCELLED, "cancelled", 30)
    with pytest.raises(DomainError) as again:
        order_cancel(actor=seller, order=order)
    assert again.value.code == "order_not_open"
    assert_reconciled()


def test_cancel_of_another_participants_order_is_not_found(ex):
    _, seller_acc, seller = ex.trader("Seller", units=100)
    _, _, other = ex.trader("Other")
    order = ex.order(seller, seller_acc, "sell", 8000, 10).order
    with pytest.raises(DomainError) as refused:
        order_cancel(actor=other, order=order)
    assert refused.value.code == "order_not_found"


def test_a_withdrawal_cannot_take_cash_held_by_an_open_buy_order(ex):
    from exchange.services.cash import cash_withdraw

    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)  # holds 8,048.00 yuan: 91,952.00 of 100,000.00 stay available
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        cash_withdraw(actor=ex.operator, account=buyer_acc, amount_fen=9_500_000, reference="W-held")

    assert (refused.value.code, refused.value.status) == ("insufficient_available", 409)
    assert refused.value.details == {
        "account": buyer_acc.number,
        "asset": "CNY",
        "available": "91952.00",
        "requested": "95000.00",
    }
    assert snapshot() == before
    assert balance(buyer_acc, ex.cny) == (10_000_000, 804_800)
    # All that is available may leave; the held cash stays for the order.
    cash_withdraw(actor=ex.operator, account=buyer_acc, amount_fen=9_195_200, reference="W-available")
    assert balance(buyer_acc, ex.cny) == (804_800, 804_800)
    assert_reconciled()


def test_session_close_cancels_every_open_order(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8100, 100)
    ex.order(buyer, buyer_acc, "buy", 7900, 100)

    with clock.pinned(IN_SESSION.replace(hour=11, minute=29, second=59)):
        assert orders_cancel_at_close() == 0  # the morning session is still open
    with clock.pinned(IN_SESSION.replace(hour=11, minute=30)):
        assert orders_cancel_at_close() == 2
        assert orders_cancel_at_close() == 0

    assert set(Order.objects.values_list("status", "end_reason")) == {(OrderStatus.CANCELLED, "session_close")}
    assert balance(seller_acc, ex.cea) == (1000, 0)
    assert balance(buyer_acc, ex.cny) == (10_000_000, 0)
    assert_reconciled()


def _all_day_asset(ex):
    """A second vintage, listed all day every day (as the demo market is): on a market whose rulebook says so."""
    from exchange.services.issuance import cea_vintage_create
    from exchange.services.listings import asset_list
    from tests.helpers.market import cda_market, on_market

    asset = cea_vintage_create(actor=ex.market.registry_actor, vintage=2025)
    on_market(asset, cda_market("XT-ALLDAY", sessions="00:00-24:00", trading_days="daily"))
    asset_list(actor=ex.operator, asset=asset, reference_price_fen=8000)
    return asset


def test_session_close_cancels_per_asset_the_orders_whose_session_has_ended(ex):
    all_day = _all_day_asset(ex)
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    ex.market.give(seller_acc, 1000, asset=all_day)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8100, 100)  # CEA-2024, the 09:30-11:30 session
    ex.order(buyer, buyer_acc, "buy", 7900, 100)  # holds 7,947.40 yuan
    all_day_sell = ex.order(seller, seller_acc, "sell", 8100, 200, asset=all_day).order
    all_day_buy = ex.order(buyer, buyer_acc, "buy", 7900, 50, asset=all_day).order  # holds 3,973.70 yuan

    with clock.pinned(IN_SESSION.replace(hour=11, minute=30)):
        assert orders_cancel_at_close() == 2

    assert set(Order.objects.filter(asset=ex.cea).values_list("status", "end_reason")) == {
        (OrderStatus.CANCELLED, "session_close")
    }
    assert set(Order.objects.filter(asset=all_day).values_list("status", flat=True)) == {OrderStatus.OPEN}
    assert balance(seller_acc, ex.cea) == (1000, 0)
    assert balance(seller_acc, all_day) == (1000, 200)
    assert balance(buyer_acc, ex.cny) == (10_000_000, 397_370)

    # The all-day asset's session ends with its trading day.
    with clock.pinned(IN_SESSION.replace(hour=23, minute=59, second=59)):
        assert orders_cancel_at_close() == 0
    with clock.pinned(IN_SESSION.replace(hour=0) + timedelta(days=1)):
        assert orders_cancel_at_close() == 2
        assert orders_cancel_at_close() == 0

    assert {
        (o.pk, o.status, o.end_reason) for o in Order.objects.filter(asset=all_day)
    } == {
        (all_day_sell.pk, OrderStatus.CANCELLED, "session_close"),
        (all_day_buy.pk, OrderStatus.CANCELLED, "session_close"),
    }
    assert balance(seller_acc, all_day) == (1000, 0)
    assert balance(buyer_acc, ex.cny) == (10_000_000, 0)
    assert_reconciled()


def test_a_late_run_spares_the_orders_of_the_session_still_open(ex):
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    morning = ex.order(seller, seller_acc, "sell", 8100, 100).order
    with clock.pinned(IN_SESSION.replace(hour=13, minute=5)):
        afternoon = ex.order(seller, seller_acc, "sell", 8200, 30).order

    with clock.pinned(IN_SESSION.replace(hour=13, minute=6)):  # the 11:30 run never came
        assert orders_cancel_at_close() == 1

    assert Order.objects.get(pk=morning.pk).status == OrderStatus.CANCELLED
    assert Order.objects.get(pk=afternoon.pk).status == OrderStatus.OPEN
    assert balance(seller_acc, ex.cea) == (1000, 30)
    with clock.pinned(IN_SESSION.replace(hour=15)):
        assert orders_cancel_at_close() == 1
    assert balance(seller_acc, ex.cea) == (1000, 0)


def test_session_close_with_nothing_to_cancel_is_one_query(ex):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _all_day_asset(ex)
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    ex.order(seller, seller_acc, "sell", 8100, 100)
    events = AuditEvent.objects.count()

    for orders in ("some open, none ended", "none open"):
        with CaptureQueriesContext(connection) as queries:
            assert orders_cancel_at_close() == 0
        assert len([q for q in queries if "SAVEPOINT" not in q["sql"]]) == 1, orders
        Order.objects.update(status=OrderStatus.CANCELLED, ended_at=IN_SESSION)
    assert AuditEvent.objects.count() == events


def test_the_session_close_job_runs_every_minute():
    from django_celery_beat.models import PeriodicTask

    [task] = PeriodicTask.objects.filter(task="exchange.orders_cancel_at_close")

    assert (task.name, task.enabled, task.interval) == ("session-close", True, None)
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, cron.day_of_month, cron.month_of_year) == ("*",) * 5
    assert str(cron.timezone) == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price_fen": 8001, "quantity": 10, "tick": 5}, "invalid_tick"),
        ({"quantity": 15, "lot": 10}, "invalid_lot"),
        ({"quantity": 100_000}, "wrong_order_mode"),
        ({"quantity": 99_999, "mode": "block"}, "wrong_order_mode"),
        ({"price_fen": 8801}, "price_out_of_band"),
        ({"price_fen": 7199}, "price_out_of_band"),
        ({"price_fen": 10_401, "quantity": 100_000, "mode": "block"}, "price_out_of_band"),
        ({"at": datetime(2026, 11, 25, 12, 0, tzinfo=clock.MARKET_TZ)}, "market_closed"),
        ({"at": datetime(2026, 11, 28, 10, 0, tzinfo=clock.MARKET_TZ)}, "market_closed"),
        ({"quantity": 300_000, "mode": "block"}, "insufficient_available"),
        ({"side": "buy", "price_fen": 8000, "quantity": 5000}, "insufficient_available"),
        ({"kind": ParticipantKind.REGISTRY}, "wrong_participant_kind"),
    ],
)
def test_each_order_rule_refused_with_its_code_and_nothing_held(ex, change, code):
    from exchange.services.orders import order_place

    if "tick" in change:
        with clock.pinned(IN_SESSION):
            ex.rules_change(tick_fen=change.pop("tick"))
    if "lot" in change:
        with clock.pinned(IN_SESSION):
            ex.rules_change(lot=change.pop("lot"))
    kind = change.pop("kind", ParticipantKind.COMPLIANCE_ENTITY)
    if kind == ParticipantKind.REGISTRY:
        acc, actor = ex.trader("Holder", units=200_000)[1], ex.market.registry_actor
    else:
        _, acc, actor = ex.trader("Trader", units=200_000, cash_fen=1_000_000, kind=kind)
    moment = change.pop("at", IN_SESSION)
    args = {"side": "sell", "mode": "listing", "price_fen": 8000, "quantity": 10} | change
    before = snapshot()

    with clock.pinned(moment), pytest.raises(DomainError) as refused:
        order_place(actor=actor, account=acc, asset=ex.cea, client_order_id="x", **args)

    assert refused.value.code == code
    assert snapshot() == before
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("price", "mode", "quantity"),
    [(8800, "listing", 10), (7200, "listing", 10), (10_400, "block", 100_000), (5600, "block", 100_000)],
)
def test_band_edges_are_accepted(ex, price, mode, quantity):
    _, acc, actor = ex.trader("Trader", units=200_000)
    assert ex.order(actor, acc, "sell", price, quantity, mode=mode).order.status == OrderStatus.OPEN


def test_listing_and_block_orders_do_not_cross(ex):
    _, seller_acc, seller = ex.trader("Seller", units=200_000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=1_000_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 100_000, mode="block")
    assert ex.order(buyer, buyer_acc, "buy", 8000, 10).trades == []


def test_a_client_order_id_is_unique_per_participant_not_a_replay(ex):
    """Issue 13: the client order id is a uniqueness rule; retries replay through the Idempotency-Key."""
    _, acc, actor = ex.trader("Trader", units=100)
    first = ex.order(actor, acc, "sell", 8000, 10, client_order_id="mine-1")
    before = snapshot()
    for quantity in (10, 11):  # the same order again, or another one
        with pytest.raises(DomainError) as refused:
            ex.order(actor, acc, "sell", 8000, quantity, client_order_id="mine-1")
        assert refused.value.code == "duplicate_client_order_id"
        assert refused.value.details == {"client_order_id": "mine-1", "order": first.order.pk}
    assert snapshot() == before
    assert balance(acc, ex.cea) == (100, 10)


def test_previous_close_moves_the_band(ex):
    from exchange.services.day_close import day_close

    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=100_000_000)
    ex.order(seller, seller_acc, "sell", 8500, 100)
    ex.order(buyer, buyer_acc, "buy", 8500, 100)
    close = day_close(asset=ex.cea, day=IN_SESSION.date())
    assert (close.close_fen, close.volume, close.close_from_trades) == (8500, 100, True)

    with clock.pinned(IN_SESSION + timedelta(days=1)):
        assert ex.order(seller, seller_acc, "sell", 9350, 10).order.status == OrderStatus.OPEN  # 8500 + 10%
        with pytest.raises(DomainError) as refused:
            ex.order(seller, seller_acc, "sell", 9351, 10)
    assert refused.value.code == "price_out_of_band"


def test_a_market_open_every_day_trades_on_saturday(ex):
    _, acc, actor = ex.trader("Trader", units=100)
    saturday_night = datetime(2026, 11, 28, 22, 0, tzinfo=clock.MARKET_TZ)
    with clock.pinned(IN_SESSION):
        ex.rules_change(
            trading_days="daily",
            modes=[{"mode": "continuous", "sessions": "00:00-24:00", "band_bp": 1000, "buyer_fee_bp": 60,
                    "seller_fee_bp": 60}],
        )

    with clock.pinned(saturday_night):
        assert ex.order(actor, acc, "sell", 8000, 10).order.status == OrderStatus.OPEN
