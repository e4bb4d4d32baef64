"""The front page at ``/``: the public market data (each listed asset's last close, change and today's
trading, with its chart), the registry lookup, and the ways in (API docs, the admin). No login; thin over
``exchange.selectors.dashboard`` and throttled per address like the public registry."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from core import clock
from exchange.selectors.dashboard import market_overview
from exchange.selectors.registry import serialised_assets
from exchange.templatetags.greenledger import price_colours


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    today = clock.trading_day()
    context = {
        "today": today,
        "market": market_overview(today),
        "assets": serialised_assets(),
        "colours": price_colours(),
    }
    return render(request, "registry/home.html", context)
