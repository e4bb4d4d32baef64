"""Template tags: the admin dashboard's figures (one selector), its charts, and numbers as people read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.safestring import SafeString

from exchange.selectors.dashboard import Dashboard, dashboard
from exchange.web.charts import close_volume_chart

register = template.Library()


@register.filter
def sees_every_participant(user: Any) -> bool:
    """Whether the admin user sees every participant's rows and the market-wide dashboard (an overseer)."""
    from exchange.admin.base import sees_every_participant as sees

    return sees(user)


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


@register.simple_tag
def price_colours() -> dict[str, str]:
    """The colours of a rise and a fall: red up and green down as China reads a market (the default), or
    the other way round with GREENLEDGER_PRICE_COLOURS=green-up."""
    red, green = "#c8102e", "#1f7a3f"
    if getattr(settings, "GREENLEDGER_PRICE_COLOURS", "red-up") == "green-up":
        return {"up": green, "down": red}
    return {"up": red, "down": green}


@register.filter
def cst(value: object) -> str:
    """A time (a datetime or an ISO 8601 string, "Z" included) as China reads it: 2026-12-02 17:18:05 in
    China Standard Time."""
    if value in (None, ""):
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if timezone.is_naive(moment):
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def obligation_status(value: str) -> str:
    """An obligation status as people read it ("open" -> "Open", 进行中 in Chinese)."""
    from exchange.models import ObligationStatus

    try:
        return str(ObligationStatus(value).label)
    except ValueError:
        return value
