"""Settle the unsettled trades of closed trading days now, delivery versus payment, as the registry (the
schedule does it after the close)."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.db.models import Count, Sum
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.actors import Actor
from core.errors import DomainError
from core.i18n import TranslatedCommand
from exchange.models import Trade
from exchange.services.settlement import settlement_run


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


class Command(TranslatedCommand):
    help = _("Settle the unsettled trades of closed trading days now in one batch (idempotent per --key).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as",
            dest="username",
            help=gettext("Act as this registry user (default: the system, 'manage.py settle')."),
        )
        parser.add_argument("--key", help=gettext("Idempotency key: running again with it returns the same batch."))

    def handle(self, *args: Any, username: str | None, key: str | None, **options: Any) -> None:
        started = time.monotonic()
        actor = Actor.system("manage.py settle")
        if username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(gettext("No user %(username)s.") % {"username": repr(username)})
            actor = Actor.for_user(user)
        pending = Trade.objects.filter(settlement_batch__isnull=True).aggregate(  # type: ignore[misc]  # TradeManager annotates it; django-stubs see only fields
            trades=Count("id"), units=Sum("quantity"), assets=Count("asset", distinct=True)
        )
        self.stderr.write(
            "[1/2] "
            + gettext("%(trades)s, %(units)s t in %(assets)s")
            % {
                "trades": ngettext("%(count)s unsettled trade", "%(count)s unsettled trades", pending["trades"])
                % {"count": pending["trades"]},
                "units": f"{pending['units'] or 0:,}",
                "assets": ngettext("%(count)s asset", "%(count)s assets", pending["assets"])
                % {"count": pending["assets"]},
            }
        )
        self.stderr.write("[2/2] " + gettext("settling in one batch ..."))
        try:
            batch = settlement_run(actor=actor, idempotency_key=key)
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                gettext(
                    "settle: batch %(batch)s (%(status)s): %(trades)s, %(units)s t, %(cash)s yuan, fees %(fees)s yuan, "
                    "%(holds)s, in %(seconds)ss"
                )
                % {
                    "batch": batch.pk,
                    "status": batch.get_status_display(),
                    "trades": ngettext("%(count)s trade", "%(count)s trades", batch.trades_count)
                    % {"count": batch.trades_count},
                    "units": f"{batch.units_total:,}",
                    "cash": _yuan(batch.cash_total_fen),
                    "fees": _yuan(batch.fees_total_fen),
                    "holds": ngettext("%(count)s hold released", "%(count)s holds released", batch.holds_released)
                    % {"count": batch.holds_released},
                    "seconds": f"{elapsed:.2f}",
                }
            )
        )
