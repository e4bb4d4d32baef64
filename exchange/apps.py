from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = _("Registry and exchange")
    default_auto_field = "django.db.models.BigAutoField"
    #: Every module that defines a DomainError (``core.errors.catalogue()`` imports them; a test holds the
    #: list complete): the app's catalogue and the few service-local errors beside their service.
    error_modules = (
        "exchange.errors",
        "exchange.selectors.audit",
        "exchange.selectors.ccer",
        "exchange.selectors.pledges",
        "exchange.selectors.transactions",
        "exchange.services.agreements",
        "exchange.services.approvals",
        "exchange.services.auctions",
        "exchange.services.calendar",
        "exchange.services.cash",
        "exchange.services.ccer",
        "exchange.services.four_eyes",
        "exchange.services.freezes",
        "exchange.services.instrument_rules",
        "exchange.services.markets",
        "exchange.services.nontrade",
        "exchange.services.obligations",
        "exchange.services.orders",
        "exchange.services.pledges.errors",
        "exchange.services.proceeds",
        "exchange.services.serial_book",
        "exchange.services.transfers",
        "exchange.services.trust",
        "exchange.services.webhooks",
    )

    def ready(self) -> None:
        from core.vocabulary import apply
        from exchange import vocabulary
        from exchange.schedule import sync_after_migrate

        # Records and fields named as registry staff say them, in the request's language.
        apply(self, models=vocabulary.MODELS, fields=vocabulary.FIELDS, model_fields=vocabulary.MODEL_FIELDS)

        # The periodic jobs follow exchange.schedule after every migrate: one idempotent step owns them.
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="exchange.schedule.sync")
        # So do the event routes the audit trigger reads (exchange.events).
        from exchange.events import sync_after_migrate as events_sync_after_migrate

        post_migrate.connect(events_sync_after_migrate, sender=self, dispatch_uid="exchange.events.sync")

        # The apps below exchange call into it through ports it fills here (they import no exchange module):
        # core.service records their audit events, accounts.hooks opens a new holder's first account.
        from accounts import hooks
        from core import service
        from exchange.services.accounts import account_open
        from exchange.services.audit import audit_record

        service.audit_recorder_install(audit_record)
        hooks.account_opener_install(account_open)
