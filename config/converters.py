"""URL path converters that refuse what the database can't hold, so such URLs answer 404, never 500."""

from __future__ import annotations


class IdConverter:
    """A positive id that fits a bigint."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class CodeConverter:
    """A code, account number or other identifier: letters, digits, '-', '_' and '.', at most 64."""

    regex = "[A-Za-z0-9._-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
