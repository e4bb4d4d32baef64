"""Model and field names as the people who use them say them, in one place per app and translatable.

Each app lists its words (``<app>/vocabulary.py``) and applies them when it is ready. Only a name the model
leaves to Django (no ``verbose_name`` of its own) is given one, and only the runtime name changes: migrations
keep what the model declares (``Field._verbose_name``, ``Options.original_attrs``), so no migration follows
from a word changed here. A model that names itself or a field in its own code wins over this list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Words = Mapping[str, Any]


def apply(app_config: Any, *, models: Words, fields: Words, model_fields: Mapping[tuple[str, str], Any]) -> None:
    """``models``: model name (lower case) -> (singular, plural); ``fields``: field name -> name on every
    model; ``model_fields``: (model name, field name) -> name on that model only."""
    for model in app_config.get_models():
        opts = model._meta
        names = models.get(opts.model_name)
        if names is not None:
            if "verbose_name" not in opts.original_attrs:
                opts.verbose_name = names[0]
            if "verbose_name_plural" not in opts.original_attrs:
                opts.verbose_name_plural = names[1]
        for field in opts.get_fields():
            if getattr(field, "auto_created", False) and not getattr(field, "concrete", False):
                continue
            if getattr(field, "_verbose_name", True) is not None:
                continue  # the model names this field itself
            word = model_fields.get((opts.model_name, field.name), fields.get(field.name))
            if word is not None:
                field.verbose_name = word
