"""Field types shared by the API: quantities as integers, money (fen) as decimal strings."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from django_filters.fields import ChoiceField, IsoDateTimeField
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.db import fetch_rows
from core.limits import MAX_QUANTITY, is_whole
from core.money import fen_to_str
from exchange.models import Asset

MAX_ID = 2**63 - 1  # the largest bigint


MAX_FEN = 10**17
# Money as the API takes it (and its schema says): ASCII digits, at most 15 before the point (leading
# zeros aside) and two after. No exponent (``1e999999`` would overflow the decimal context), no other
# script's digits, no ``_``, no spaces. Input fields with a lower bound advertise the narrower pattern.
MONEY_PATTERN = r"^-?0*[0-9]{1,15}(\.[0-9]{1,2})?$"
NON_NEGATIVE_MONEY_PATTERN = r"^0*[0-9]{1,15}(\.[0-9]{1,2})?$"
POSITIVE_MONEY_PATTERN = r"^0*([1-9][0-9]{0,14}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"
_MONEY = re.compile(MONEY_PATTERN)


class MoneyTooLarge(ValueError):
    """An amount beyond ``MAX_FEN`` (in either direction)."""


def str_to_fen(text: str) -> int:
    """Parse a decimal string with at most two places (``MONEY_PATTERN``) into fen; ValueError otherwise."""
    text = str(text)
    if not _MONEY.fullmatch(text):
        raise ValueError(gettext("not a decimal number with at most two places"))
    fen = int(Decimal(text).scaleb(2))
    if abs(fen) > MAX_FEN:
        raise MoneyTooLarge(gettext("too large"))
    return fen


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY})
class QuantityField(serializers.IntegerField):
    """A whole, positive number of units (tonnes CO2e). Strings and fractions are refused."""

    default_error_messages = {
        "invalid": _("A quantity is a whole number of tonnes."),
        # "10" is whole, but a string: say what to send instead of calling it a fraction.
        "text": _("A quantity is a JSON number, not a string: send {value} without quotes."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_QUANTITY)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and data.strip().isascii() and data.strip().isdigit():
            # The code stays "invalid" (clients branch on it); the message says what to send.
            raise serializers.ValidationError(self.error_messages["text"].format(value=data.strip()), code="invalid")
        if not is_whole(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class MoneyField(serializers.Field):
    """Money in yuan as a decimal string with at most two places; held internally as integer fen."""

    default_error_messages = {"invalid": _('Money is a decimal string with at most two places, e.g. "12.34".')}

    def __init__(self, *, min_fen: int | None = 0, **kwargs: Any) -> None:
        self.min_fen = min_fen
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            fen = str_to_fen(str(data))
        except MoneyTooLarge:
            raise serializers.ValidationError(
                gettext("Too large: at most %(amount)s.") % {"amount": fen_to_str(MAX_FEN)}, code="max_value"
            ) from None
        except ValueError:
            self.fail("invalid")
        if self.min_fen is not None and fen < self.min_fen:
            raise serializers.ValidationError(
                gettext("Must be at least %(amount)s.") % {"amount": fen_to_str(self.min_fen)}, code="min_value"
            )
        return fen

    def to_representation(self, value: int) -> str:
        return fen_to_str(value)


class MoneyFieldSchema(OpenApiSerializerFieldExtension):
    """A money field's pattern says what it takes: any sign on output, none below its lower bound on input."""

    target_class = MoneyField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field: MoneyField = self.target
        pattern = MONEY_PATTERN
        if direction == "request" and field.min_fen is not None and field.min_fen >= 0:
            pattern = POSITIVE_MONEY_PATTERN if field.min_fen >= 1 else NON_NEGATIVE_MONEY_PATTERN
        return {"type": "string", "pattern": pattern, "example": "12.34"}


# Codes as the URL converter takes them (config.converters.CodeConverter).
CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_CODE = re.compile(CODE_PATTERN)
CODE_SCHEMA = {"type": "string", "pattern": CODE_PATTERN, "example": "CEA-2024"}


@extend_schema_field(CODE_SCHEMA)
class AssetField(serializers.Field):
    """An asset by its code (``CODE_PATTERN``); an unknown code is refused with ``unknown_asset``."""

    def to_internal_value(self, data: Any) -> Asset:
        if not isinstance(data, str) or not _CODE.fullmatch(data):
            raise serializers.ValidationError(gettext("An asset code, e.g. CEA-2024."), code="invalid")
        found = fetch_rows(Asset, "code = %s", [data])
        asset = found[0] if found else None
        if asset is None:
            raise serializers.ValidationError(
                gettext("No asset %(asset)s.") % {"asset": f"{data!r}"}, code="unknown_asset"
            )
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
            raise serializers.ValidationError(gettext("A serial range is [first, last]."), code="invalid")
        first, last = values
        if last < first:
            raise serializers.ValidationError(gettext("The range ends before it starts."), code="invalid")
        return first, last


_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")


def query_int(request: Any, name: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """A whole-number query parameter: None when absent or empty, else ASCII digits within the bounds.

    Anything else is a 400 naming the parameter. ``str.isdigit`` would let other scripts' digits and
    superscripts (``²``) through to an ``int()`` that refuses them with a 500.
    """
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    value = int(text) if _WHOLE_NUMBER.fullmatch(text) else None
    if value is None or not minimum <= value <= maximum:
        raise serializers.ValidationError({name: [f"A whole number from {minimum} to {maximum}."]})
    return value


def int_parameter_schema(minimum: int = 0, maximum: int = MAX_ID) -> dict[str, Any]:
    """The OpenAPI schema of a ``query_int`` parameter."""
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


class _PresentMeansGiven:
    """A filter parameter sent empty (``?trading_day=``) is not a date: refused, not ignored, as the schema
    (``format: date``) says."""

    def clean(self, value: Any) -> Any:
        if value == "":
            raise forms.ValidationError(gettext("Give a value or leave the parameter out."), code="invalid")
        return super().clean(value)  # type: ignore[misc]


class _DateField(_PresentMeansGiven, forms.DateField):
    pass


class _IsoDateTimeField(_PresentMeansGiven, IsoDateTimeField):
    pass


class _ChoiceField(_PresentMeansGiven, ChoiceField):
    pass


class ChoiceFilter(filters.ChoiceFilter):
    """One of the choices; sent empty it is refused (the schema's enum has no empty value)."""

    field_class = _ChoiceField


class _BooleanField(forms.Field):
    """``true`` or ``false`` (as the schema's boolean is written in a query), nothing else."""

    def to_python(self, value: Any) -> bool | None:
        if value is None:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise forms.ValidationError(gettext("true or false."), code="invalid")


class BooleanFilter(filters.BooleanFilter):
    field_class = _BooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The plain text, not django-filter's BooleanWidget, which reads anything else as "not given".
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class DateFilter(filters.DateFilter):
    field_class = _DateField


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = _IsoDateTimeField


@extend_schema_field({"type": "integer", "minimum": -MAX_ID, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """Filter by a row id: a whole number a bigint holds. Anything else is refused with 400, where a
    plain ``NumberFilter`` passes decimals and numbers out of bigint's range through to the database (a 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -MAX_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 2000, "maximum": 2100})
class YearFilter(IdFilter):
    """A compliance year or vintage: a whole number from 2000 to 2100, as the bodies take it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 2000)
        kwargs.setdefault("max_value", 2100)
        super().__init__(*args, **kwargs)


class IdField(serializers.IntegerField):
    """A row id in a request body: a positive whole number a bigint holds."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
