"""Changing the working-day calendars (``exchange.models.calendar``); reading them is ``exchange.selectors.calendar``.

- ``calendar_year_load`` makes a year equal to its data file (``exchange/data/calendars/<code>-<year>.json``,
  shipped in the package, or another file in the same format): it creates the calendar and the year if they
  are new, adds, changes and removes days, and records one ``calendar.load`` event naming each. Loading the
  same data again changes nothing and records nothing.
- ``calendar_day_set`` and ``calendar_day_remove`` edit one day of a loaded year (the admin's edits).

Every change counts the year's ``revision`` up, records its audit event in the same transaction, and drops the
selector's cache when it commits. Registry and exchange staff (or the system) make changes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

from django.utils.translation import gettext_lazy

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import InvalidInput, NotFound
from exchange.locks import lock_row, lock_rows
from exchange.models import Calendar, CalendarDay, CalendarYear, DayKind
from exchange.models.calendar import MAX_YEAR, MIN_YEAR
from exchange.selectors.calendar import note_calendar_changed
from exchange.services.audit import audit_record, mark_unchanged, service

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "calendars"


def _(text: str) -> str:
    """Mark a message for translation; it is translated when shown (a lazy string, typed as what it becomes)."""
    return cast(str, gettext_lazy(text))


class CalendarNotFound(NotFound):
    code = "calendar_not_found"
    default_message = _("No such calendar.")


class CalendarYearNotLoaded(NotFound):
    code = "calendar_year_not_loaded"
    default_message = _("The calendar has no data for this year; load it first (manage.py load_calendar).")


class CalendarYearInvalid(InvalidInput):
    code = "calendar_year_invalid"
    default_message = _("Calendar years run from 1950 to 2199.")  # MIN_YEAR, MAX_YEAR


class CalendarDataNotFound(NotFound):
    code = "calendar_data_not_found"
    default_message = _("No calendar data file for this calendar and year.")


class CalendarDataInvalid(InvalidInput):
    code = "calendar_data_invalid"
    default_message = _("The calendar data file is malformed.")


class CalendarDayInvalid(InvalidInput):
    code = "calendar_day_invalid"
    default_message = _("The day can't be entered in this calendar.")


class CalendarDayNotFound(NotFound):
    code = "calendar_day_not_found"
    default_message = _("The calendar has no entry for this day.")


@dataclass(frozen=True)
class DayEntry:
    day: date
    kind: str
    name_en: str
    name_zh: str = ""

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.kind, self.name_en, self.name_zh)


@dataclass(frozen=True)
class YearData:
    """A year of a calendar as its data file says it."""

    code: str
    name_en: str
    name_zh: str
    year: int
    source_title: str
    source_url: str
    source_published: date | None
    days: tuple[DayEntry, ...]


# --- checks ------------------------------------------------------------------------------------------------
def _require_editor(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, ParticipantKind.EXCHANGE)


def check_year(year: Any) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
        raise CalendarYearInvalid(details={"year": year})
    return year


def check_day(year: int, day: date, kind: str, name_en: str) -> None:
    """A day belongs to its year, has a known kind and a name; a make-up working day is a Saturday or Sunday."""
    details = {"day": day.isoformat(), "kind": kind}
    if day.year != year:
        raise CalendarDayInvalid(_("The day is not in the calendar year %(year)d.") % {"year": year}, details=details)
    if kind not in DayKind.values:
        raise CalendarDayInvalid(_("A day is a holiday or a makeup_workday."), details=details)
    if kind == DayKind.MAKEUP_WORKDAY and day.weekday() < 5:
        raise CalendarDayInvalid(
            _("A make-up working day is a Saturday or a Sunday; Monday to Friday are working days already."),
            details=details,
        )
    if not name_en.strip():
        raise CalendarDayInvalid(_("Name the day (the holiday it belongs to)."), details=details)


def _calendar(code: str) -> Calendar:
    found = Calendar.objects.filter(code=code.upper()).first()
    if found is None:
        raise CalendarNotFound(details={"calendar": code})
    return found


def _locked_year(code: str, year: int) -> CalendarYear:
    calendar = _calendar(code)
    found = lock_row(CalendarYear.objects.filter(calendar=calendar, year=check_year(year)))
    if found is None:
        raise CalendarYearNotLoaded(details={"calendar": calendar.code, "year": year})
    found.calendar = calendar
    return found


# --- data files --------------------------------------------------------------------------------------------
def data_file(code: str, year: int) -> Path:
    return DATA_DIR / f"{code.lower()}-{year}.json"


def calendar_data_read(code: str, year: int, path: Path | None = None) -> YearData:
    """Read and check a year's data file: the shipped one for ``code`` and ``year`` unless ``path`` is given."""
    check_year(year)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,15}", code):  # a code names a file: no paths
        raise CalendarNotFound(details={"calendar": code})
    source = path or data_file(code, year)
    if path is None and not any(DATA_DIR.glob(f"{code.lower()}-*.json")):
        raise CalendarNotFound(_("No calendar data is shipped for this calendar."), details={"calendar": code})
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalendarDataNotFound(details={"calendar": code, "year": year, "file": source.name}) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalendarDataInvalid(details={"file": source.name, "reason": str(exc)}) from None
    data = parse_calendar_data(raw)
    if data.code != code.upper() or data.year != year:
        raise CalendarDataInvalid(
            _("The file is for another calendar or year."),
            details={"file": source.name, "calendar": data.code, "year": data.year},
        )
    return data


def parse_calendar_data(raw: Any) -> YearData:
    """The data file's JSON as a ``YearData``, every day checked; ``CalendarDataInvalid`` names what is wrong."""
    try:
        code = str(raw["calendar"]).upper()
        year = check_year(raw["year"])
        source = raw["source"]
        published = source.get("published")
        days = []
        for row in raw["days"]:
            entry = DayEntry(
                day=date.fromisoformat(row["date"]),
                kind=row["kind"],
                name_en=str(row["name_en"]),
                name_zh=str(row.get("name_zh", "")),
            )
            check_day(year, entry.day, entry.kind, entry.name_en)
            days.append(entry)
        data = YearData(
            code=code,
            name_en=str(raw["name_en"]),
            name_zh=str(raw.get("name_zh", "")),
            year=year,
            source_title=str(source["title"]),
            source_url=str(source.get("url", "")),
            source_published=date.fromisoformat(published) if published else None,
            days=tuple(sorted(days, key=lambda d: d.day)),
        )
    except CalendarDayInvalid as exc:
        raise CalendarDataInvalid(str(exc.message), details=exc.details) from None
    except CalendarYearInvalid as exc:
        raise CalendarDataInvalid(str(exc.message), details=exc.details) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CalendarDataInvalid(details={"reason": f"{type(exc).__name__}: {exc}"}) from None
    if not data.source_title.strip():
        raise CalendarDataInvalid(_("The file names no source."))
    if len({d.day for d in data.days}) != len(data.days):
        raise CalendarDataInvalid(_("A day is listed twice."))
    return data


# --- services ----------------------------------------------------------------------------------------------
def _entry_payload(entry: tuple[str, str, str] | None) -> dict[str, str] | None:
    if entry is None:
        return None
    kind, name_en, name_zh = entry
    return {"kind": kind, "name_en": name_en, "name_zh": name_zh}


@service
def calendar_year_load(*, actor: Actor, code: str, year: int, data: YearData | None = None) -> CalendarYear:
    """Make a calendar year equal to its data (the shipped file unless ``data`` is given). Idempotent: when
    the year already says what the data says, nothing changes and no event is recorded."""
    _require_editor(actor)
    check_year(year)
    data = data or calendar_data_read(code, year)
    if data.code != code.upper() or data.year != year:
        raise CalendarDataInvalid(
            _("The data is for another calendar or year."), details={"calendar": data.code, "year": data.year}
        )
    now = clock.now()
    calendar, calendar_created = Calendar.objects.get_or_create(
        code=data.code, defaults={"name_en": data.name_en, "name_zh": data.name_zh, "created_at": now}
    )
    # Loads of one calendar take turns: the second sees the year the first created once it commits.
    calendar = lock_rows(Calendar.objects.filter(pk=calendar.pk))[0]
    source = {
        "source_title": data.source_title,
        "source_url": data.source_url,
        "source_published": data.source_published,
    }
    existing = lock_row(CalendarYear.objects.filter(calendar=calendar, year=year))
    current: dict[date, tuple[str, str, str]] = {}
    if existing is not None:
        current = {d.day: (d.kind, d.name_en, d.name_zh) for d in existing.days.all()}
    wanted = {d.day: d.as_tuple() for d in data.days}
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    changed = sorted(d for d in set(wanted) & set(current) if wanted[d] != current[d])
    source_changed = existing is not None and any(getattr(existing, k) != v for k, v in source.items())
    if existing is not None and not (added or removed or changed or source_changed):
        mark_unchanged()
        return existing
    if existing is None:
        target = CalendarYear.objects.create(calendar=calendar, year=year, loaded_at=now, updated_at=now, **source)
    else:
        target = existing
        for key, value in source.items():
            setattr(target, key, value)
        target.revision += 1
        target.updated_at = now
        target.save(update_fields=[*source, "revision", "updated_at"])
    if removed:
        CalendarDay.objects.filter(calendar_year=target, day__in=removed).delete()
    for day in changed:
        kind, name_en, name_zh = wanted[day]
        CalendarDay.objects.filter(calendar_year=target, day=day).update(kind=kind, name_en=name_en, name_zh=name_zh)
    CalendarDay.objects.bulk_create(
        [
            CalendarDay(calendar_year=target, day=day, kind=kind, name_en=name_en, name_zh=name_zh)
            for day in added
            for kind, name_en, name_zh in [wanted[day]]
        ]
    )
    audit_record(
        actor=actor,
        action="calendar.load",
        obj=target,
        payload={
            "calendar": calendar.code,
            "calendar_created": calendar_created,
            "year": year,
            "revision": target.revision,
            "source_title": data.source_title,
            "source_url": data.source_url,
            "source_published": data.source_published.isoformat() if data.source_published else None,
            "added": {d.isoformat(): _entry_payload(wanted[d]) for d in added},
            "changed": {d.isoformat(): [_entry_payload(current[d]), _entry_payload(wanted[d])] for d in changed},
            "removed": {d.isoformat(): _entry_payload(current[d]) for d in removed},
        },
        at=now,
    )
    note_calendar_changed()
    target.calendar = calendar
    return target


@service
def calendar_day_set(*, actor: Actor, code: str, day: date, kind: str, name_en: str, name_zh: str = "") -> CalendarDay:
    """Enter or change one day of a loaded calendar year (a holiday or a make-up working day)."""
    _require_editor(actor)
    if not isinstance(day, date):
        raise CalendarDayInvalid(_("A day is a date (YYYY-MM-DD)."), details={"day": str(day)})
    year = _locked_year(code, day.year)
    check_day(year.year, day, kind, name_en)
    wanted = (kind, name_en.strip(), name_zh.strip())
    found = CalendarDay.objects.filter(calendar_year=year, day=day).first()
    before = None if found is None else (found.kind, found.name_en, found.name_zh)
    if before == wanted:
        mark_unchanged()
        return found  # type: ignore[return-value]  # before == wanted implies found
    if found is None:
        found = CalendarDay.objects.create(
            calendar_year=year, day=day, kind=wanted[0], name_en=wanted[1], name_zh=wanted[2]
        )
    else:
        found.kind, found.name_en, found.name_zh = wanted
        found.save(update_fields=["kind", "name_en", "name_zh"])
    _bump(year)
    audit_record(
        actor=actor,
        action="calendar.day_set",
        obj=found,
        payload={
            "calendar": year.calendar.code,
            "year": year.year,
            "revision": year.revision,
            "day": day.isoformat(),
            "before": _entry_payload(before),
            "after": _entry_payload(wanted),
        },
    )
    note_calendar_changed()
    return found


@service
def calendar_day_remove(*, actor: Actor, code: str, day: date) -> None:
    """Take one day's entry out of a loaded calendar year: it is an ordinary day of its weekday again."""
    _require_editor(actor)
    if not isinstance(day, date):
        raise CalendarDayInvalid(_("A day is a date (YYYY-MM-DD)."), details={"day": str(day)})
    year = _locked_year(code, day.year)
    found = CalendarDay.objects.filter(calendar_year=year, day=day).first()
    if found is None:
        raise CalendarDayNotFound(details={"calendar": year.calendar.code, "day": day.isoformat()})
    before = (found.kind, found.name_en, found.name_zh)
    found_id = found.pk
    found.delete()
    _bump(year)
    audit_record(
        actor=actor,
        action="calendar.day_remove",
        obj=("calendarday", found_id),
        payload={
            "calendar": year.calendar.code,
            "year": year.year,
            "revision": year.revision,
            "day": day.isoformat(),
            "before": _entry_payload(before),
        },
    )
    note_calendar_changed()


def _bump(year: CalendarYear) -> None:
    year.revision += 1
    year.updated_at = clock.now()
    year.save(update_fields=["revision", "updated_at"])


__all__ = [
    "CalendarDataInvalid",
    "CalendarDataNotFound",
    "CalendarDayInvalid",
    "CalendarDayNotFound",
    "CalendarNotFound",
    "CalendarYearInvalid",
    "CalendarYearNotLoaded",
    "YearData",
    "calendar_data_read",
    "calendar_day_remove",
    "calendar_day_set",
    "calendar_year_load",
]
