"""The working-day calendars on the API: public, no login (anyone may check a deadline or a trading day)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.models import Calendar, CalendarDay
from exchange.selectors.calendar import calendar_year_summary
from exchange.services.calendar import CalendarNotFound, CalendarYearNotLoaded, check_year


class CalendarDayOut(serializers.ModelSerializer):
    date = serializers.DateField(source="day")

    class Meta:
        model = CalendarDay
        fields = ["date", "kind", "name_en", "name_zh"]


class CalendarSourceOut(serializers.Serializer):
    title = serializers.CharField()
    url = serializers.CharField()
    published = serializers.DateField(allow_null=True)


class CalendarYearOut(serializers.Serializer):
    calendar = serializers.CharField()
    name_en = serializers.CharField()
    name_zh = serializers.CharField()
    year = serializers.IntegerField()
    revision = serializers.IntegerField(help_text=_("Counts the changes made to this year since it was loaded."))
    updated_at = serializers.DateTimeField()
    source = CalendarSourceOut()  # type: ignore[assignment]  # a field here, not Field.source
    holidays = CalendarDayOut(many=True, help_text=_("Every day off, weekend days inside a holiday included."))
    makeup_workdays = CalendarDayOut(
        many=True,
        help_text=_("Weekend days worked in exchange for a holiday: working days, not trading days."),
    )
    working_days = serializers.IntegerField(help_text=_("Days in the year that count in working-day windows."))
    trading_days = serializers.IntegerField(
        help_text=_("Days the exchanges trade: Monday to Friday that are not public holidays.")
    )


class CalendarYearApi(APIView):
    """A calendar's year: public holidays, make-up working days, and the count of working and trading days.

    A working day is Monday to Friday unless a public holiday, plus the make-up working days; a trading day is
    Monday to Friday unless a public holiday (China's exchanges don't open on make-up weekend days).
    Refusals: 404 ``calendar_not_found`` (no such calendar), 404 ``calendar_year_not_loaded`` (the year's data
    has not been loaded), 400 ``calendar_year_invalid`` (a year outside 1950-2199).
    """

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=CalendarYearOut,
        auth=[],
        operation_id="calendar_year",
        parameters=[
            OpenApiParameter("calendar", str, OpenApiParameter.PATH, description="The calendar's code, e.g. CN."),
            OpenApiParameter("year", int, OpenApiParameter.PATH, description="The year, e.g. 2026."),
        ],
    )
    def get(self, request: Request, calendar: str, year: int) -> Response:
        check_year(year)
        summary = calendar_year_summary(calendar, year)
        if summary is None:
            if not Calendar.objects.filter(code=calendar.upper()).exists():
                raise CalendarNotFound(details={"calendar": calendar})
            raise CalendarYearNotLoaded(details={"calendar": calendar.upper(), "year": year})
        found = summary.calendar_year
        payload = {
            "calendar": found.calendar.code,
            "name_en": found.calendar.name_en,
            "name_zh": found.calendar.name_zh,
            "year": found.year,
            "revision": found.revision,
            "updated_at": found.updated_at,
            "source": {"title": found.source_title, "url": found.source_url, "published": found.source_published},
            "holidays": summary.holidays,
            "makeup_workdays": summary.makeup_workdays,
            "working_days": summary.working_days,
            "trading_days": summary.trading_days,
        }
        return Response(CalendarYearOut(payload).data)
