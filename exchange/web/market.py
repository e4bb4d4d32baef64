"""The public market data page: each market's and instrument's daily quotes, no login (the same data as
``/api/v1/public/quotes``, ``exchange.selectors.quotes``)."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from core import clock
from exchange.models import Market
from exchange.selectors.quotes import daily_quotes


@require_safe
def quotes(request: HttpRequest) -> HttpResponse:
    try:
        day = date.fromisoformat(request.GET["day"]) if request.GET.get("day") else clock.trading_day()
    except ValueError:
        day = clock.trading_day()
    market = request.GET.get("market") or None
    markets = list(Market.objects.order_by("code"))
    rows = daily_quotes(day=day, market=market)
    return render(request, "registry/quotes.html", {"day": day, "market": market, "markets": markets, "rows": rows})
