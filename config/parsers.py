"""Request body parsers (kept apart from ``config.api``: DRF resolves them while its views import)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested deeper than the decoder can follow refused as malformed (400).

    The standard library's decoder recurses per level and raises ``RecursionError`` (not ``ValueError``)
    at about a thousand, which DRF would let through as a 500.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error: the body is nested too deeply.") from None
