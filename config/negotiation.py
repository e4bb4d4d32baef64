"""Content negotiation that answers an unknown ``?format=`` as bad input (kept apart from ``config.api``,
which imports DRF's views, which load this class from the settings)."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class ContentNegotiation(DefaultContentNegotiation):
    """DRF raises Http404 for a format no renderer of the view has; the client asked for something this
    endpoint doesn't offer, so it is a 400 naming the formats it does."""

    def filter_renderers(self, renderers: Iterable[BaseRenderer], format: str) -> list[BaseRenderer]:
        renderers = list(renderers)
        offered = [renderer for renderer in renderers if renderer.format == format]
        if not offered:
            formats = ", ".join(dict.fromkeys(str(renderer.format) for renderer in renderers))
            raise exceptions.ValidationError({"format": [f"One of {formats}."]})
        return offered
