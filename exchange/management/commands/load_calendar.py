"""Load a year of a working-day calendar: ``manage.py load_calendar cn 2026``.

Reads ``exchange/data/calendars/<code>-<year>.json`` (shipped in the package), or ``--file`` for a year whose
data isn't shipped yet, and makes the year equal to it through ``calendar_year_load``. Idempotent: loading the
same data again changes nothing and records no audit event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.actors import Actor
from core.errors import DomainError
from core.i18n import TranslatedCommand
from exchange.services.audit import recording_service_calls
from exchange.services.calendar import calendar_data_read, calendar_year_load


class Command(TranslatedCommand):
    help = _("Load a year of a working-day calendar (public holidays and make-up working days) from its data file.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("calendar", help=gettext("The calendar's code, e.g. cn."))
        parser.add_argument("year", help=gettext("The year, e.g. 2026."))
        parser.add_argument(
            "--file", type=Path, help=gettext("Read this file instead of the shipped one (same format).")
        )
        parser.add_argument(
            "--as", dest="username", help=gettext("Act as this registry or exchange user (default: the system).")
        )

    def handle(
        self, *args: Any, calendar: str, year: str, file: Path | None, username: str | None, **options: Any
    ) -> None:
        actor = Actor.system("manage.py load_calendar")
        if username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(gettext("No user %(username)s.") % {"username": repr(username)})
            actor = Actor.for_user(user)
        if not (year.isascii() and year.isdigit()):
            raise CommandError(
                gettext("The year is a number, not %(year)s (calendar_year_invalid).") % {"year": repr(year)}
            )
        try:
            data = calendar_data_read(calendar, int(year), file)
            with recording_service_calls() as calls:
                loaded = calendar_year_load(actor=actor, code=calendar, year=int(year), data=data)
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        changed = any(call.events for call in calls)
        holidays = sum(1 for d in data.days if d.kind == "holiday")
        working = len(data.days) - holidays
        self.stdout.write(
            self.style.SUCCESS(
                gettext(
                    "load_calendar: %(code)s %(year)s: %(holidays)s, %(working)s, revision %(revision)s; %(state)s; "
                    "source: %(source)s"
                )
                % {
                    "code": data.code,
                    "year": data.year,
                    "holidays": ngettext("%(count)s holiday", "%(count)s holidays", holidays) % {"count": holidays},
                    "working": ngettext("%(count)s make-up working day", "%(count)s make-up working days", working)
                    % {"count": working},
                    "revision": loaded.revision,
                    "state": gettext("loaded") if changed else gettext("unchanged (already loaded)"),
                    "source": data.source_title,
                }
            )
        )
