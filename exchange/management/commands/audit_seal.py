"""Seal committed audit events now (the schedule does it every minute)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.i18n import TranslatedCommand
from exchange.services.sealing import audit_seal


class Command(TranslatedCommand):
    help = _("Seal every committed, unsealed audit event into checkpoints.")

    def handle(self, *args: Any, **options: Any) -> None:
        made = audit_seal()
        if not made:
            self.stdout.write(gettext("audit_seal: nothing new to seal."))
            return
        events = sum(c.count for c in made)
        self.stdout.write(
            gettext("audit_seal: %(checkpoints)s, %(events)s, through event %(seq)s; latest hash %(hash)s")
            % {
                "checkpoints": ngettext("%(count)s checkpoint", "%(count)s checkpoints", len(made))
                % {"count": len(made)},
                "events": ngettext("%(count)s event", "%(count)s events", events) % {"count": events},
                "seq": made[-1].last_seq,
                "hash": made[-1].hash,
            }
        )
