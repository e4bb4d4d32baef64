"""Working-day and trading calendars, held as data: a year of public holidays and make-up working days.

A ``Calendar`` (``CN``: the Chinese mainland) has one ``CalendarYear`` per loaded year, carrying the official
source it was taken from, and that year's exceptions to the Monday-to-Friday week as ``CalendarDay`` rows:
``holiday`` (a day off, whatever its weekday) or ``makeup_workday`` (a Saturday or Sunday worked in exchange
for a holiday, 调休上班). A year without a ``CalendarYear`` row is not loaded; see
``exchange.selectors.calendar`` for what that means. Rows change only through ``exchange.services.calendar``,
which records an audit event for each change and counts the year's ``revision``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

MIN_YEAR, MAX_YEAR = 1950, 2199


class Calendar(models.Model):
    code = models.CharField(max_length=16, unique=True, help_text=_("Upper case, e.g. CN."))
    name_en = models.CharField(max_length=200)
    name_zh = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(code__regex=r"^[A-Z][A-Z0-9_-]*$"), name="calendar_code_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.code} calendar"


class CalendarYear(models.Model):
    calendar = models.ForeignKey(Calendar, on_delete=models.PROTECT, related_name="years")
    year = models.PositiveIntegerField()
    source_title = models.CharField(max_length=300, help_text=_("The official notice the days are taken from."))
    source_url = models.URLField(max_length=500, blank=True)
    source_published = models.DateField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1, help_text=_("Counts the changes made to this year."))
    loaded_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["calendar", "-year"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "year"], name="calendar_year_once"),
            models.CheckConstraint(
                condition=models.Q(year__gte=MIN_YEAR, year__lte=MAX_YEAR, revision__gte=1),
                name="calendar_year_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.calendar.code} {self.year}"


class DayKind(models.TextChoices):
    HOLIDAY = "holiday", _("Public holiday (no work, no trading)")
    MAKEUP_WORKDAY = "makeup_workday", _("Make-up working day (offices work, exchanges stay closed)")


class CalendarDay(models.Model):
    calendar_year = models.ForeignKey(CalendarYear, on_delete=models.PROTECT, related_name="days")
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=DayKind.choices)
    name_en = models.CharField(max_length=100)
    name_zh = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["calendar_year", "day"], name="calendar_day_once"),
            models.CheckConstraint(condition=models.Q(kind__in=DayKind.values), name="calendar_day_kind_valid"),
            # A make-up working day is a Saturday or a Sunday: Monday to Friday are working days already.
            models.CheckConstraint(
                condition=~models.Q(kind=DayKind.MAKEUP_WORKDAY) | models.Q(day__iso_week_day__gte=6),
                name="calendar_makeup_day_on_weekend",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day.isoformat()} {self.kind} ({self.name_en})"
