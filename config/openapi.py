"""The schema class of every API view (DRF's DEFAULT_SCHEMA_CLASS); apart from ``config.schema``, whose
view module imports DRF's views, which load this class from the settings."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import is_list_serializer
from rest_framework import serializers


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The operation, with the refusal codes its view declares (``error_codes``: a list, or a mapping of
        method to list) as ``x-error-codes``; ``config.schema.add_error_responses`` adds the codes every
        operation of its kind can answer and files them under their statuses."""
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        declared = getattr(self.view, "error_codes", None)
        if operation is not None and declared:
            codes = declared.get(self.method.lower(), []) if isinstance(declared, dict) else declared
            operation["x-error-codes"] = sorted({getattr(c, "code", c) for c in codes})
        return operation

    """drf-spectacular's, stating a nested list's bounds (``many=True`` with ``min_length``, ``max_length``
    or ``allow_empty=False``) as ``minItems``/``maxItems``, as it already does for ``ListField``, and that a
    required text field is more than white space (DRF trims it, so ``" "`` is blank): ``pattern: \\S``."""

    def _map_serializer_field(
        self, field: serializers.Field, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if is_list_serializer(field) and isinstance(schema, dict) and schema.get("type") == "array":
            minimum = getattr(field, "min_length", None)
            if not getattr(field, "allow_empty", True):
                minimum = max(minimum or 0, 1)
            if minimum:
                schema["minItems"] = minimum
            if getattr(field, "max_length", None) is not None:
                schema["maxItems"] = field.max_length  # type: ignore[union-attr]
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & set(schema)
            and not any(isinstance(v, RegexValidator) for v in field.validators)  # its own pattern comes later
        ):
            schema["pattern"] = r"\S"
        return schema
