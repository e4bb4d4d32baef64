"""The API's JSON renderer: orjson, through drf-orjson-renderer, with DRF's own renderer as the fallback.

orjson (a Rust encoder) renders a response body several times faster than the standard library's encoder
that DRF uses, on a path where rendering is a visible share of a request's CPU. drf-orjson-renderer is the
maintained DRF binding for it (lazy translation strings, decimals, querysets as DRF renders them). The
output is the same JSON (compact, UTF-8, keys in order). orjson refuses integers beyond 64 bits, which DRF
would render: such a body falls back to DRF's renderer rather than fail. Request bodies keep the strict
standard-library parser (``config.parsers``): orjson would take a key given twice silently.
"""

from __future__ import annotations

from typing import Any

import orjson
from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework import renderers


class JSONRenderer(ORJSONRenderer):
    format = "json"
    media_type = "application/json"

    def render(self, data: Any, media_type: str | None = None, renderer_context: Any = None) -> bytes:
        try:
            return super().render(data, media_type, renderer_context)
        except orjson.JSONEncodeError:
            return renderers.JSONRenderer().render(data, media_type, renderer_context)


def render_json(data: Any) -> bytes:
    """``data`` as the API renders it (the idempotency store keeps an answer in this form)."""
    return JSONRenderer().render(data, "application/json")
