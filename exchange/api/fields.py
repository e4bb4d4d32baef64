"""Field types shared by the API: quantities as integers, money (fen) as decimal strings."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange.db import fetch_rows
from exchange.limits import MAX_QUANTITY, is_whole
from exchange.models import Asset
from exchange.money import fen_to_str

MAX_ID = 2**63 - 1  # the largest bigint


def str_to_fen(text: str) -> int:
    """Parse a decimal string with at most two places into fen; ValueError otherwise."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not value.is_finite():
        raise ValueError("not a finite number")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError("at most two decimal places")
    return int(fen)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY})
class QuantityField(serializers.IntegerField):
    """A whole, positive number of units (tonnes CO2e). Strings and fractions are refused."""

    default_error_messages = {
        "invalid": "A quantity is a whole number of tonnes.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_QUANTITY)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if not is_whole(data):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$", "example": "12.34"})
class MoneyField(serializers.Field):
    """Money in yuan as a decimal string with at most two places; held internally as integer fen."""

    default_error_messages = {"invalid": 'Money is a decimal string with at most two places, e.g. "12.34".'}

    def __init__(self, *, min_fen: int | None = 0, **kwargs: Any) -> None:
        self.min_fen = min_fen
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, (str, int)) or isinstance(data, bool):
            self.fail("invalid")
        try:
            fen = str_to_fen(str(data))
        except ValueError:
            self.fail("invalid")
        if self.min_fen is not None and fen < self.min_fen:
            raise serializers.ValidationError(f"Must be at least {fen_to_str(self.min_fen)}.", code="min_value")
        if abs(fen) > 10**17:
            raise serializers.ValidationError("Too large.", code="max_value")
        return fen

    def to_representation(self, value: int) -> str:
        return fen_to_str(value)


@extend_schema_field(OpenApiTypes.STR)
class AssetField(serializers.Field):
    """An asset by its code; an unknown code is refused with ``unknown_asset``."""

    def to_internal_value(self, data: Any) -> Asset:
        if not isinstance(data, str) or not data.strip() or len(data) > 64 or "\x00" in data:
            raise serializers.ValidationError("An asset code, e.g. CEA-2024.", code="invalid")
        found = fetch_rows(Asset, "code = %s", [data.strip()])
        asset = found[0] if found else None
        if asset is None:
            raise serializers.ValidationError(f"No asset {data.strip()!r}.", code="unknown_asset")
        return asset

    def to_representation(self, value: Asset) -> str:
        return value.code


class SerialRangeField(serializers.ListField):
    """An inclusive serial range ``[first, last]``."""

    child = serializers.IntegerField(min_value=1, max_value=2**62)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", 2)
        kwargs.setdefault("max_length", 2)
        super().__init__(**kwargs)

    def to_internal_value(  # type: ignore[override]  # a pair: the stubs fix every ListField's value as a list
        self, data: Any
    ) -> tuple[int, int]:
        values = super().to_internal_value(data)
        if len(values) != 2:
            raise serializers.ValidationError("A serial range is [first, last].", code="invalid")
        first, last = values
        if last < first:
            raise serializers.ValidationError("The range ends before it starts.", code="invalid")
        return first, last


class IdFilter(filters.NumberFilter):
    """Filter by a row id: a whole number a bigint holds. Anything else is refused with 400, where a
    plain ``NumberFilter`` passes any decimal through and SQLite fails on it with a 500."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -MAX_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdField(serializers.IntegerField):
    """A row id in a request body: a positive whole number a bigint holds."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
