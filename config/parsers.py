"""Request body parsers (kept apart from ``config.api``: DRF resolves them while its views import)."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


class DuplicateKey(ValueError):
    pass


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (the decoder would keep the last silently, so
    ``{"quantity": -5, "quantity": 1}`` would mean whatever the last one says, unlike what a proxy, a log
    or another parser in front of us read)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"the key {key!r} appears more than once in an object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser made strict: a key given twice in an object, ``NaN``/``Infinity``, or a body nested
    deeper than the decoder can follow are refused as malformed (400 ``malformed_request``).

    The standard library's decoder recurses per level and raises ``RecursionError`` (not ``ValueError``)
    at about a thousand, which DRF would let through as a 500.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded = codecs.getreader(encoding)(stream)
            return json.load(
                decoded, object_pairs_hook=_object_without_duplicate_keys, parse_constant=_refuse_constant
            )
        except RecursionError:
            raise exceptions.ParseError("JSON parse error: the body is nested too deeply.") from None
        except ValueError as exc:  # includes UnicodeDecodeError and DuplicateKey
            raise exceptions.ParseError(f"JSON parse error: {exc}") from None
