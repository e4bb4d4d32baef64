"""The API's pagination (kept apart from ``config.api``, which imports DRF's views)."""

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class Pagination(CursorPagination):
    """Cursor pagination, newest first: stable under concurrent inserts, no OFFSET scans."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SerialOrderPagination(LimitOffsetPagination):
    """Pages in the queryset's own order (serial blocks by asset and first serial)."""

    default_limit = 100
    max_limit = 1000
