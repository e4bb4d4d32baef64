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
