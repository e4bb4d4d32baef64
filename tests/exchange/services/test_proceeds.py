"""Cash from sales buys on T and is withdrawn from T+1: a buy draws on the proceeds of unsettled sales (paid from
the counterparty's held cash), settlement pays only the rest, and the advanced cash can't leave before it settles."""

from __future__ import annotations

import json
from datetime import date

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import ProceedsAdvance, SettlementStatus
from exchange.services.agreements import listing_pick, listing_post
from exchange.services.cash import cash_asset, cash_withdraw
from exchange.services.issuance import cea_vintage_create
from exchange.services.listings import asset_list
from exchange.services.orders import order_cancel
from exchange.services.settlement import settlement_run
from tests.exchange.services.test_agreements import WEDNESDAY, National, at
from tests.helpers.concurrency import attempt, run_workers
from tests.helpers.ledger import assert_reconciled, balance, snapshot

pytestmark = pytest.mark.django_db

THURSDAY = date(2026, 11, 26)
PROCEEDS = 800_000 - 4_800  # 100 t at 80.00 less the seller's 0.6 %
COST_50 = 400_000 + 2_400  # 50 t at 80.00 and the buyer's 0.6 %


def _sold(nat: National):
    """The seller (no cash) sells 100 t at 80.00 on Wednesday morning to a buyer with cash."""
    _, s_acc, seller = nat.trader("Seller", units=1000)
    _, b_acc, buyer = nat.trader("Buyer", cash_fen=10_000_000)
    with clock.pinned(at(WEDNESDAY, 10)):
        listing = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="s1"
        )
        listing_pick(actor=buyer, account=b_acc, listing=listing, client_order_id="b1")
    return s_acc, seller, b_acc


def test_cash_from_a_sale_buys_the_same_day_and_settlement_pays_the_rest():
    nat = National()
    s_acc, seller, b_acc = _sold(nat)
    _, o_acc, other = nat.trader("Other seller", units=500)
    assert balance(s_acc, cash_asset()) == (0, 0)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=50, client_order_id="o1"
        )
        bought = listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s2")

    assert [t.quantity for t in bought.trades] == [50]
    # The cost moved from the buyer's held cash to the seller, and is held for the seller's purchase.
    assert balance(s_acc, cash_asset()) == (COST_50, COST_50)
    assert balance(b_acc, cash_asset()) == (10_000_000 - COST_50, 804_800 - COST_50)
    assert list(ProceedsAdvance.objects.values_list("account_id", "amount_fen")) == [(s_acc.pk, COST_50)]
    assert_reconciled()

    with clock.pinned(at(WEDNESDAY, 15, 5)):
        batch = settlement_run(actor=nat.market.registry_actor)
    assert (batch.status, batch.trades_count) == (SettlementStatus.COMPLETED, 2)
    assert balance(s_acc, cash_asset()) == (PROCEEDS - COST_50, 0)
    assert balance(s_acc, nat.cea) == (950, 0)
    assert balance(b_acc, cash_asset()) == (10_000_000 - 804_800, 0)
    assert balance(b_acc, nat.cea) == (100, 0)
    assert balance(o_acc, cash_asset()) == (400_000 - 2_400, 0)
    assert_reconciled()


def test_a_buy_beyond_the_unsettled_proceeds_is_refused_and_advances_nothing():
    nat = National()
    s_acc, seller, _ = _sold(nat)
    _, o_acc, other = nat.trader("Other seller", units=500)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="o1"
        )
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s2")  # 804,800 > 795,200
    assert refused.value.code == "insufficient_available"
    assert snapshot() == before
    assert not ProceedsAdvance.objects.exists()


def test_advanced_cash_is_not_withdrawable_until_its_sale_settles():
    nat = National()
    s_acc, seller, _ = _sold(nat)
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        bid = listing_post(
            actor=seller, account=s_acc, asset=nat.cea, side="buy", price_fen=8000, quantity=50, client_order_id="s2"
        )
        order_cancel(actor=seller, order=bid)
        assert balance(s_acc, cash_asset()) == (COST_50, 0)
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            cash_withdraw(actor=nat.operator, account=s_acc, amount_fen=1, reference="w1")
    assert (refused.value.code, refused.value.status) == ("proceeds_not_withdrawable", 409)
    assert refused.value.details["unsettled_proceeds"] == "4024.00"
    assert snapshot() == before

    with clock.pinned(at(WEDNESDAY, 15, 5)):
        settlement_run(actor=nat.market.registry_actor)
    assert balance(s_acc, cash_asset()) == (PROCEEDS, 0)
    with clock.pinned(at(THURSDAY, 9, 30)):
        cash_withdraw(actor=nat.operator, account=s_acc, amount_fen=PROCEEDS, reference="w2")
    assert balance(s_acc, cash_asset()) == (0, 0)
    assert_reconciled()


def test_sales_proceeds_before_any_advance_are_not_in_the_balance_to_withdraw():
    nat = National()
    s_acc, _, _ = _sold(nat)
    with clock.pinned(at(WEDNESDAY, 11)), pytest.raises(DomainError) as refused:
        cash_withdraw(actor=nat.operator, account=s_acc, amount_fen=PROCEEDS, reference="w1")
    assert refused.value.code == "insufficient_available"


@pytest.mark.django_db(transaction=True)
def test_two_buys_at_once_on_two_books_draw_on_the_proceeds_once():
    nat = National()
    s_acc, seller, _ = _sold(nat)  # 795,200 fen of unsettled proceeds, no cash
    with clock.pinned(at(WEDNESDAY, 9)):
        cea25 = cea_vintage_create(actor=nat.market.registry_actor, vintage=2025)
        asset_list(actor=nat.operator, asset=cea25, reference_price_fen=8000)
    assets = [nat.cea, cea25]
    with clock.pinned(at(WEDNESDAY, 10, 30)):

        def work(i: int) -> list[str]:
            return [
                attempt(
                    lambda: listing_post(
                        actor=seller,
                        account=s_acc,
                        asset=assets[i],
                        side="buy",
                        price_fen=8000,
                        quantity=50,  # 402,400 fen each: both together exceed the proceeds
                        client_order_id=f"bid-{i}",
                    )
                )
            ]

        outcomes = run_workers(2, work)

    assert sorted(outcomes) == ["insufficient_available", "ok"]
    assert sum(ProceedsAdvance.objects.values_list("amount_fen", flat=True)) == COST_50
    assert balance(s_acc, cash_asset()) == (COST_50, COST_50)
    assert_reconciled()


def _trade_rows_read(sql: str, params) -> int:
    """Rows the statement reads from the trades table (returned by its scans plus removed by their filters),
    planned as on a large table (no sequential scans)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_seqscan = on")
    plan = plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]
    read, pending = 0, [plan]
    while pending:
        node = pending.pop()
        pending.extend(node.get("Plans", []))
        if node.get("Relation Name") == "exchange_trade":
            loops = node.get("Actual Loops", 1)
            read += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
    return read


def test_the_unsettled_proceeds_are_read_from_the_settlement_watermark_on_not_from_the_settled_history():
    # Given a seller whose sales of Monday to Wednesday are settled (the watermark is Thursday's batch's day)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from exchange.models import SettlementBatch, Trade
    from exchange.services.proceeds import advanced_unsettled, proceeds_unsettled

    nat = National()
    _, s_acc, seller = nat.trader("Seller", units=1000)
    _, b_acc, buyer = nat.trader("Buyer", cash_fen=100_000_000)
    days = [date(2026, 11, 23), date(2026, 11, 24), WEDNESDAY, THURSDAY]
    for n, day in enumerate(days):
        with clock.pinned(at(day, 10)):
            for k in range(3):
                listing = listing_post(
                    actor=seller,
                    account=s_acc,
                    asset=nat.cea,
                    side="sell",
                    price_fen=8000,
                    quantity=10,
                    client_order_id=f"s{n}-{k}",
                )
                listing_pick(actor=buyer, account=b_acc, listing=listing, client_order_id=f"b{n}-{k}")
        if day != THURSDAY:
            with clock.pinned(at(day + (days[n + 1] - day), 9)):  # the next morning: every earlier day settles
                settlement_run(actor=nat.market.registry_actor)
    assert SettlementBatch.objects.order_by("-id").first().settled_before == THURSDAY
    assert Trade.objects.filter(settlement_batch__isnull=True).count() == 3  # Thursday's
    assert Trade.objects.count() == 12
    # and Thursday's proceeds paid what the settled cash (9 sales) fell short of for a purchase of 100 t
    _, o_acc, other = nat.trader("Other seller", units=500)
    with clock.pinned(at(THURSDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=100, client_order_id="o1"
        )
        listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s-buy")
    advance = 804_800 - 9 * (80_000 - 480)

    # When the proceeds a buy may draw on and the cash not yet withdrawable are read
    with CaptureQueriesContext(connection) as reads, clock.pinned(at(THURSDAY, 11)):
        left = proceeds_unsettled(s_acc)
        advanced = advanced_unsettled(s_acc)

    # Then the figures are Thursday's alone
    assert advance == 89_120
    assert left == 3 * (80_000 - 480) - advance
    assert advanced == advance
    assert balance(s_acc, cash_asset()) == (804_800, 804_800)
    # and each statement is bounded by the watermark, reading Thursday's trades and none of the nine settled
    statements = [q["sql"] for q in reads.captured_queries if "exchange_trade t" in q["sql"]]
    assert len(statements) == 2
    assert all("trading_day >= '2026-11-26'" in sql for sql in statements)
    for sql in statements:
        assert _trade_rows_read(sql, None) <= 3 + 1  # Thursday's three sales and the purchase, not the history


def test_where_the_rulebook_says_sales_cash_does_not_buy_on_the_day_a_buy_beyond_cash_is_refused():
    # Given CN-CEA's rulebook from Wednesday on: sales' cash buys only once settled
    from exchange.models import Market
    from exchange.selectors.rulebooks import rulebook_for
    from exchange.services.markets import rulebook_publish

    nat = National()
    assert rulebook_for("CN-CEA", WEDNESDAY).sale_cash_buys_same_day is True  # the shipped rule
    with clock.pinned(at(WEDNESDAY, 9)):
        rulebook_publish(
            actor=nat.operator,
            market=Market.objects.get(code="CN-CEA"),
            effective_from=WEDNESDAY,
            changes={"sale_cash_buys_same_day": False},
        )
    s_acc, seller, _ = _sold(nat)
    _, o_acc, other = nat.trader("Other seller", units=500)

    # When the seller, with no cash but Wednesday's unsettled sale, buys
    with clock.pinned(at(WEDNESDAY, 10, 30)):
        offered = listing_post(
            actor=other, account=o_acc, asset=nat.cea, side="sell", price_fen=8000, quantity=50, client_order_id="o1"
        )
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            listing_pick(actor=seller, account=s_acc, listing=offered, client_order_id="s2")

    # Then it is refused as cash it doesn't have, and nothing was advanced or changed
    assert refused.value.code == "insufficient_available"
    assert snapshot() == before
    assert not ProceedsAdvance.objects.exists()
    assert balance(s_acc, cash_asset()) == (0, 0)

    # and once settled, the cash buys
    with clock.pinned(at(WEDNESDAY, 15, 5)):
        settlement_run(actor=nat.market.registry_actor)
    assert balance(s_acc, cash_asset()) == (PROCEEDS, 0)
