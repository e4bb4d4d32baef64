"""The API's pagination (kept apart from ``config.api``, which imports DRF's views)."""

from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination, LimitOffsetPagination
from rest_framework.request import Request


class Pagination(CursorPagination):
    """Cursor pagination, newest first: stable under concurrent inserts, no OFFSET scans."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

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
