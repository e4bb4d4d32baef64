"""The demo market loads, twice without change, and ends with a CEA pledge registered with a demo bank."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F, Sum

from accounts.models import ApiToken
from core import clock
from exchange.management.commands.seed_demo import BOT_TOKENS, LISTINGS
from exchange.models import AuditEvent, DailyPrice, HoldStatus, Order, PledgeLoan, PledgeStatus, SerialBlock, Trade
from exchange.selectors.quotes import daily_quotes
from exchange.services.pledges import ltv_bp_of
from tests.helpers.ledger import assert_reconciled

pytestmark = pytest.mark.django_db


def test_seed_demo_registers_one_demo_pledge_idempotently():
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    events = AuditEvent.objects.count()

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())

    assert AuditEvent.objects.count() == events
    loan = PledgeLoan.objects.select_related("borrower", "lender", "asset", "account").get()
    assert (loan.status, loan.asset.code, loan.quantity, loan.principal_fen) == (
        PledgeStatus.REGISTERED,
        "CEA-2024",
        50_000,
        240_000_000,
    )
    assert (loan.borrower.name, loan.lender.name) == ("Jingneng Thermal Power Co.", "Bank of Beijing Tongzhou Branch")
    assert loan.ltv_bp == ltv_bp_of(loan.principal_fen, 50_000 * loan.price_fen) <= loan.ltv_limit_bp
    (collateral,) = loan.collateral.select_related("hold")
    assert (collateral.hold.status, sum(last - first + 1 for first, last in collateral.serial_ranges)) == (
        HoldStatus.ACTIVE,
        50_000,
    )
    assert SerialBlock.objects.filter(hold=collateral.hold).aggregate(n=Sum(F("last") - F("first") + 1))["n"] == 50_000
    assert_reconciled()


def test_seed_demo_records_ten_settled_past_days_and_the_bot_tokens():
    err = io.StringIO()
    call_command("seed_demo", stdout=io.StringIO(), stderr=err)

    today = clock.trading_day()
    days = sorted(set(DailyPrice.objects.values_list("day", flat=True)))
    assert days == [today - timedelta(days=n) for n in range(10, 0, -1)]
    assert DailyPrice.objects.count() == 31
    assert DailyPrice.objects.filter(close_from_trades=True).count() == 31
    assert not Trade.objects.filter(settlement_batch__isnull=True).exists()
    assert Trade.objects.filter(trading_day__lt=today).count() == Trade.objects.count()
    for code, reference in LISTINGS:
        close = DailyPrice.objects.filter(asset__code=code).order_by("-day").first().close_fen
        assert abs(close - reference) * 100 <= 2 * reference  # within 2%: today's book sits inside the band
    prefixes = sorted(text.split("_")[1] for _, text in BOT_TOKENS.values())
    assert sorted(ApiToken.objects.filter(prefix__in=prefixes).values_list("user__username", flat=True)) == [
        "cement_trader",
        "shougang_trader",
    ]
    summary = err.getvalue().strip().splitlines()[-1]
    assert summary.startswith("seed_demo: done in ")
    assert "31 daily closes, 10 open orders" in summary
    assert_reconciled()


def test_seed_demo_trades_under_every_mode_of_the_rulebooks():
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())

    last = clock.trading_day() - timedelta(days=1)
    modes = {
        (market, mode)
        for market, mode in Trade.objects.filter(trading_day=last).values_list("asset__market__code", "trading_mode")
    }
    assert {("CN-CEA", "listing"), ("CN-CCER", "listing"), ("CN-CEA", "block"), ("CN-CEA", "auction")} <= modes
    assert ("BJ-BEA", "continuous") in modes
    block = Trade.objects.get(trading_mode="block")
    assert (block.sell_order.participant.name, block.buy_order.participant.name, block.quantity) == (
        "Shougang Iron and Steel Co.",
        "Jingneng Thermal Power Co.",
        100_000,
    )
    assert 13 <= block.created_at.astimezone(clock.MARKET_TZ).hour < 15
    declined = Order.objects.get(trading_mode="block", counterparty__name="Jinyu Cement Co.")
    assert (declined.status, declined.filled) == ("cancelled", 0)
    assert sorted(Trade.objects.filter(trading_mode="auction").values_list("quantity", flat=True)) == [10_000, 20_000]
    assert not Trade.objects.filter(settlement_batch__isnull=True).exists()
    quotes = {q.asset: q.by_mode for q in daily_quotes(day=last)}
    assert set(quotes["CEA-2024"]) == {"continuous", "listing", "block"}
    assert set(quotes["CEA-2025"]) >= {"auction"}
    assert set(quotes["BEA-2025"]) == {"continuous"}
    assert_reconciled()


def test_the_demo_logins_say_who_settles_as_the_settlement_service_decides():
    """Settle now is the registry's (admin), not the exchange operator's: the service refuses exchange_ops."""
    from django.utils import translation

    from exchange.management.commands.seed_demo import DEMO_LOGINS

    roles = dict(DEMO_LOGINS)
    assert "settle now" in roles["admin"]
    assert "settle" not in roles["exchange_ops"]
    with translation.override("zh-hans"):
        assert "立即结算" in translation.gettext(roles["admin"])
        assert "立即结算" not in translation.gettext(roles["exchange_ops"])
