"""Charts as inline SVG, drawn on the server: no script, no CDN (the machine may be offline and the
Content-Security-Policy allows neither), and they print."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def close_volume_chart(
    points: Sequence[tuple[date, int, int]], *, title: str, width: int = 560, height: int = 190
) -> SafeString:
    """Daily closes as a line over daily volumes as bars. ``points`` are (day, close in fen, volume)."""
    label = escape(title)
    if not points:
        empty = escape(gettext("%(asset)s: no daily closes yet") % {"asset": title})
        text = escape(gettext("No daily closes yet"))
        return mark_safe(  # noqa: S308 - built from escaped text only
            f'<svg class="chart" role="img" aria-label="{empty}" width="{width}" height="40" '
            f'viewBox="0 0 {width} 40"><text x="8" y="24" class="empty">{text}</text></svg>'
        )

    def tonnes(quantity: int) -> str:
        return escape(gettext("%(quantity)s t") % {"quantity": f"{quantity:,}"})

    left, right, top = 58, 8, 10
    price_bottom = height - 70
    volume_top, volume_bottom = height - 58, height - 22
    span_x = width - left - right
    closes = [c for _, c, _ in points]
    low, high = min(closes), max(closes)
    pad = max((high - low) // 10, 1)
    low, high = low - pad, high + pad
    most = max(v for _, _, v in points) or 1
    step = span_x / max(len(points), 1)

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    def y(fen: int) -> float:
        return price_bottom - (fen - low) * (price_bottom - top) / (high - low)

    parts = [
        f'<svg class="chart" role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{price_bottom}"/>',
        f'<line class="axis" x1="{left}" y1="{price_bottom}" x2="{width - right}" y2="{price_bottom}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{_yuan(high)}</text>',
        f'<text class="tick" x="{left - 6}" y="{price_bottom}" text-anchor="end">{_yuan(low)}</text>',
        f'<text class="tick" x="{left - 6}" y="{volume_bottom}" text-anchor="end">{tonnes(most)}</text>',
    ]
    bar = max(step * 0.7, 1)
    for i, (day, _, volume) in enumerate(points):
        h = (volume_bottom - volume_top) * volume / most
        parts.append(
            f'<rect class="volume" x="{x(i) - bar / 2:.1f}" y="{volume_bottom - h:.1f}" width="{bar:.1f}" '
            f'height="{h:.1f}"><title>{day.isoformat()}: {tonnes(volume)}</title></rect>'
        )
    line = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, (_, c, _) in enumerate(points))
    parts.append(f'<polyline class="close" points="{line}"/>')
    for i, (day, close, _) in enumerate(points):
        parts.append(
            f'<circle class="close" cx="{x(i):.1f}" cy="{y(close):.1f}" r="2.5">'
            f"<title>{day.isoformat()}: {escape(gettext('close %(price)s') % {'price': _yuan(close)})}</title></circle>"
        )
    first, last = points[0][0], points[-1][0]
    parts += [
        f'<text class="tick" x="{left}" y="{height - 6}">{first.isoformat()}</text>',
        f'<text class="tick" x="{width - right}" y="{height - 6}" text-anchor="end">{last.isoformat()}</text>',
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only
