"""The admin dashboard: the figures it shows, from a fixed handful of aggregate queries."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core import clock
from exchange.selectors.dashboard import dashboard
from exchange.web.charts import close_volume_chart
from tests.factories import make_trade

pytestmark = pytest.mark.django_db

DASHBOARD_QUERIES = 8


@pytest.fixture
def demo():
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())


def test_the_dashboard_figures_of_the_demo_market(demo):
    d = dashboard()

    market = {a.code: a for a in d.market}
    # BEA-2025 (the Beijing pilot market) has one close: its continuous trade on the last past day.
    assert sorted(market) == ["BEA-2025", "CCER-BJ-TZ-FOREST-001-2023", "CEA-2024", "CEA-2025"]
    assert all(len(a.history) == 10 for code, a in market.items() if code != "BEA-2025")
    assert market["BEA-2025"].history == [(clock.trading_day() - timedelta(days=1), 10_200, 5_000)]
    assert market["CEA-2024"].last_close_day == clock.trading_day().fromordinal(clock.trading_day().toordinal() - 1)
    supply = {s.code: s for s in d.supply}
    assert supply["CEA-2024"].issued == 6_290_000
    assert supply["CEA-2024"].by_state["held"] >= 50_000  # the demo pledge and open sell orders
    assert supply["CEA-2025"].by_state["surrendered"] == 1_410_000
    assert supply["CCER-BJ-TZ-FOREST-001-2023"].by_state["retired"] == 2_000
    assert [(b.band, b.loans, b.quantity) for b in d.pledges] == [
        ("healthy", 1, 50_000),
        ("margin_call", 0, 0),
        ("liquidation", 0, 0),
    ]
    assert (d.compliance.year, d.compliance.entities, d.compliance.surrendered) == (2025, 5, 1_410_000)


def test_the_dashboard_takes_the_same_few_queries_however_much_has_traded(demo):
    with CaptureQueriesContext(connection) as before:
        dashboard()
    # given more trades, on another day too
    from exchange.models import Account, Asset

    cea = Asset.objects.get(code="CEA-2025")
    seller = Account.objects.get(participant__name="Yanshan Petrochemical Co.")
    buyer = Account.objects.get(participant__name="Capital Airport Energy Co.")
    for n in range(5):
        make_trade(asset=cea, seller=seller, buyer=buyer, quantity=10 + n, price_fen=9100, day=clock.trading_day())

    with CaptureQueriesContext(connection) as after:
        d = dashboard()

    assert len(before) == len(after) == DASHBOARD_QUERIES
    assert {a.code: a.unsettled_trades for a in d.market}["CEA-2025"] == 5
    assert {a.code: a.today_volume for a in d.market}["CEA-2025"] == 60


def test_the_admin_index_shows_the_dashboard(demo, django_assert_max_num_queries):
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))

    with django_assert_max_num_queries(DASHBOARD_QUERIES + 12):
        page = client.get("/admin/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="gl-dashboard"' in html
    assert html.count('<svg class="chart"') == 4  # one per listed asset: the demo lists BEA-2025 too
    assert "Open pledges by LTV band" in html
    assert "Compliance year 2025" in html
    assert "6,290,000" in html  # CEA-2024 issued
    assert "<script" not in html.split('id="gl-dashboard"')[1].split("</svg>")[0]


def test_the_chart_draws_a_point_per_day_and_escapes_its_title():
    from datetime import date

    svg = close_volume_chart([(date(2026, 11, d), 8800 + d, 1000 * d) for d in range(1, 6)], title="CEA-2024 <close>")

    assert svg.count("<circle") == 5
    assert svg.count("<rect") == 5
    assert "CEA-2024 &lt;close&gt;" in svg
    assert "<close>" not in svg
    assert "No daily closes yet" in close_volume_chart([], title="x")


def test_the_chart_speaks_the_language_of_the_page():
    from datetime import date

    from django.utils import translation

    points = [(date(2026, 11, d), 8800 + d, 1000 * d) for d in range(1, 3)]
    with translation.override("zh-hans"):
        chinese = close_volume_chart(points, title="CEA-2024")
        empty = close_volume_chart([], title="CEA-2024")
    with translation.override("en"):
        english = close_volume_chart(points, title="CEA-2024")

    assert "<title>2026-11-02: 2,000 吨</title>" in chinese
    assert "<title>2026-11-02: 收盘价 88.02</title>" in chinese
    assert ">2,000 吨</text>" in chinese
    assert " t<" not in chinese
    assert "close " not in chinese
    assert 'aria-label="CEA-2024：尚无日收盘价"' in empty
    assert ">尚无日收盘价</text>" in empty
    assert "<title>2026-11-02: 2,000 t</title>" in english
    assert "<title>2026-11-02: close 88.02</title>" in english
