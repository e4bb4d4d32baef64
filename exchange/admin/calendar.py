"""The working-day calendars in the admin: years as loaded (with a reload action) and their days, edited
through ``exchange.services.calendar`` so that every change is checked and audited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy

from accounts.admin import ServiceSaveMixin, admin_actor, run_service
from core.errors import DomainError
from exchange.models import Calendar, CalendarDay, CalendarYear
from exchange.services.calendar import calendar_day_remove, calendar_day_set, calendar_year_load


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Calendar)
class CalendarAdmin(_ReadOnly):
    """Calendars are created by loading their first year (manage.py load_calendar)."""

    list_display = ["code", "name_en", "name_zh", "created_at"]


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    fields = ["day", "kind", "name_en", "name_zh"]
    readonly_fields = ["day", "kind", "name_en", "name_zh"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CalendarYear)
class CalendarYearAdmin(_ReadOnly):
    """A loaded year and its source; its days are edited one by one under calendar days."""

    list_display = ["calendar", "year", "revision", "source_title", "source_published", "updated_at"]
    readonly_fields = [
        "calendar",
        "year",
        "revision",
        "source_title",
        "source_url",
        "source_published",
        "loaded_at",
        "updated_at",
    ]
    list_filter = ["calendar"]
    inlines = [CalendarDayInline]
    actions = ["reload"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The reload action calls the service, which decides who may; without change permission Django
        # would drop it.
        actions = super().get_actions(request)
        func, name, description = self.get_action("reload")  # type: ignore[misc]
        actions[name] = (func, name, description)
        return actions

    @admin.action(description=gettext_lazy("Reload the selected years from their shipped data files"))
    def reload(self, request: HttpRequest, queryset: QuerySet[CalendarYear]) -> None:
        for year in queryset.select_related("calendar"):
            run_service(
                request,
                lambda actor, y=year: calendar_year_load(actor=actor, code=y.calendar.code, year=y.year),
                gettext("%(year)s: now as its data file says.") % {"year": year},
            )


class CalendarDayForm(forms.ModelForm):
    class Meta:
        model = CalendarDay
        fields = ["kind", "name_en", "name_zh"]


class CalendarDayAddForm(CalendarDayForm):
    calendar = forms.ModelChoiceField(queryset=Calendar.objects.all())

    class Meta(CalendarDayForm.Meta):
        fields = ["day", "kind", "name_en", "name_zh"]


@admin.register(CalendarDay)
class CalendarDayAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """Public holidays and make-up working days. Adding or changing one calls ``calendar_day_set``, deleting
    ``calendar_day_remove``; the year must be loaded first."""

    list_display = ["day", "kind", "name_en", "name_zh", "calendar_year"]
    list_filter = ["calendar_year__calendar", "calendar_year__year", "kind"]
    search_fields = ["name_en", "name_zh"]
    date_hierarchy = "day"
    list_select_related = ["calendar_year__calendar"]

    def get_fields(self, request: HttpRequest, obj: CalendarDay | None = None) -> Any:
        if obj is None:
            return ["calendar", "day", "kind", "name_en", "name_zh"]
        return ["calendar_year", "day", "kind", "name_en", "name_zh"]

    def get_readonly_fields(self, request: HttpRequest, obj: CalendarDay | None = None) -> list[str]:
        return ["calendar_year", "day"] if obj else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = CalendarDayForm if obj is not None else CalendarDayAddForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: CalendarDay, form: forms.ModelForm, change: bool) -> None:
        code = obj.calendar_year.calendar.code if change else form.cleaned_data["calendar"].code
        result = calendar_day_set(
            actor=admin_actor(request),
            code=code,
            day=obj.day,
            kind=obj.kind,
            name_en=obj.name_en,
            name_zh=obj.name_zh,
        )
        obj.pk, obj.calendar_year_id = result.pk, result.calendar_year_id

    def delete_model(self, request: HttpRequest, obj: CalendarDay) -> None:
        try:
            calendar_day_remove(actor=admin_actor(request), code=obj.calendar_year.calendar.code, day=obj.day)
        except DomainError as exc:
            messages.error(request, f"{exc.message} ({exc.code})")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CalendarDay]) -> None:
        for entry in queryset.select_related("calendar_year__calendar"):
            run_service(
                request,
                lambda actor, e=entry: calendar_day_remove(actor=actor, code=e.calendar_year.calendar.code, day=e.day),
            )
