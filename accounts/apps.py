from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Participants and access")
    default_auto_field = "django.db.models.BigAutoField"
    #: Every module that defines a DomainError (``core.errors.catalogue()`` imports them).
    error_modules = ("accounts.errors",)

    def ready(self) -> None:
        from accounts import (
            schema,  # noqa: F401 - registers the OpenAPI auth extension
            vocabulary,
        )
        from core.vocabulary import apply

        apply(self, models=vocabulary.MODELS, fields=vocabulary.FIELDS, model_fields=vocabulary.MODEL_FIELDS)
