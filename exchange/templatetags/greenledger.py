"""Template tags: the admin dashboard's figures (one selector), its charts, and numbers as people read them."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from exchange.selectors.dashboard import Dashboard, dashboard
from exchange.web.charts import close_volume_chart

register = template.Library()


@register.simple_tag
def market_dashboard() -> Dashboard:
    return dashboard()


@register.simple_tag
def close_chart(points: list, title: str) -> SafeString:
    return close_volume_chart(points, title=title)


@register.filter
def yuan(fen: int | None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


@register.filter
def percent_bp(bp: int | None) -> str:
    if bp is None:
        return "—"
    return f"{bp / 100:+.2f}%"


@register.filter
def units(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
