"""Seal committed audit events now (the schedule does it every minute)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from core.i18n import TranslatedCommand
from exchange.services.sealing import audit_seal


class Command(TranslatedCommand):
    help = _("Seal every committed, unsealed audit event into checkpoints.")

    def handle(self, *args: Any, **options: Any) -> None:
        made = audit_seal()
        if not made:
            self.stdout.write("audit_seal: nothing new to seal.")
            return
        self.stdout.write(
            f"audit_seal: {len(made)} checkpoint(s), {sum(c.count for c in made)} events, "
            f"through event {made[-1].last_seq}; latest hash {made[-1].hash}"
        )
