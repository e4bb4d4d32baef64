from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Registry and exchange"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from exchange.schedule import sync_after_migrate

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
