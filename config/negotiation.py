"""Content negotiation that answers an unknown ``?format=`` as bad input, and picks the first renderer
without parsing anything when the client states no preference (kept apart from ``config.api``, which
imports DRF's views, which load this class from the settings)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class ContentNegotiation(DefaultContentNegotiation):
    """DRF raises Http404 for a format no renderer of the view has; the client asked for something this
    endpoint doesn't offer, so it is a 400 naming the formats it does.

    A request with no query string, no format suffix and no ``Accept`` header (or ``*/*``), as API clients
    send them, gets the view's first renderer and its media type, which is what DRF's negotiation answers
    for it, without parsing the query string and the header (``tests/config/test_api_middleware.py`` holds
    the two equal)."""

    def select_renderer(
        self, request: Any, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        meta = getattr(request, "_request", request).META
        if (
            isinstance(renderers, Sequence)
            and renderers
            and not format_suffix
            and not meta.get("QUERY_STRING")
            and meta.get("HTTP_ACCEPT", "*/*") == "*/*"
        ):
            return renderers[0], str(renderers[0].media_type)
        return super().select_renderer(request, renderers, format_suffix)

    def filter_renderers(self, renderers: Iterable[BaseRenderer], format: str) -> list[BaseRenderer]:
        renderers = list(renderers)
        offered = [renderer for renderer in renderers if renderer.format == format]
        if not offered:
            formats = ", ".join(dict.fromkeys(str(renderer.format) for renderer in renderers))
            raise exceptions.ValidationError({"format": [f"One of {formats}."]})
        return offered
