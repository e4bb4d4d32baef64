"""Write the periodic jobs of ``exchange.schedule`` into beat's tables (``migrate`` does it too)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.i18n import TranslatedCommand
from exchange import schedule


class Command(TranslatedCommand):
    help = _("Create, update and delete the periodic tasks so they match exchange/schedule.py. Idempotent.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--table", action="store_true", help=gettext("Print the schedule as a Markdown table."))

    def handle(self, *args: Any, table: bool = False, **options: Any) -> None:
        if table:
            self.stdout.write(schedule.table())
            return
        result = schedule.sync()
        for verb, names in (("created", result.created), ("updated", result.updated), ("deleted", result.deleted)):
            for name in names:
                self.stdout.write(f"{verb} {name}")
        self.stdout.write(f"sync_schedule: {len(schedule.JOBS)} jobs" + ("" if result.changed else ", no change"))
