"""The API's pagination (kept apart from ``config.api``, which imports DRF's views).

The page-size parameters are checked as their schema states them: a whole number within the bounds, or
a 400 naming the parameter (DRF would quietly use the default for ``page_size=abc`` or ``page_size=0``,
accepting a request its own schema calls invalid).
"""

import re
from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination, LimitOffsetPagination
from rest_framework.request import Request

_WHOLE = re.compile(r"[0-9]{1,10}")
MAX_OFFSET = 2**31 - 1


def whole_number_parameter(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    value = int(text) if _WHOLE.fullmatch(text) else None
    if value is None or not minimum <= value <= maximum:
        raise exceptions.ValidationError({name: [f"A whole number from {minimum} to {maximum}."]})
    return value


def _bounded(parameters: list[dict[str, Any]], bounds: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    for parameter in parameters:
        if parameter["name"] in bounds:
            minimum, maximum = bounds[parameter["name"]]
            parameter["schema"] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    return parameters


class Pagination(CursorPagination):
    """Cursor pagination, newest first: stable under concurrent inserts, no OFFSET scans."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        return whole_number_parameter(request, "page_size", self.page_size, 1, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _bounded(super().get_schema_operation_parameters(view), {"page_size": (1, self.max_page_size)})

    def decode_cursor(self, request: Request) -> Cursor | None:
        # DRF answers a cursor it can't decode with 404; it is bad input, so 400 invalid_cursor.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["Not a cursor this API gave out; use the next or previous link."]},
                code="invalid_cursor",
            ) from None


class SerialOrderPagination(LimitOffsetPagination):
    """Pages in the queryset's own order (serial blocks by asset and first serial)."""

    default_limit = 100
    max_limit = 1000

    def get_limit(self, request: Request) -> int:
        return whole_number_parameter(request, "limit", self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return whole_number_parameter(request, "offset", 0, 0, MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _bounded(
            super().get_schema_operation_parameters(view), {"limit": (1, self.max_limit), "offset": (0, MAX_OFFSET)}
        )
