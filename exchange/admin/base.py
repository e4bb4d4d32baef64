"""Shared admin classes and helpers: read-only admins and inlines, and the pages that answer for a missing
object or an operation submitted for four-eyes approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext

from exchange.models import ApprovalRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Posted and derived rows: staff look, nobody edits (the database refuses it too)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The actions a read-only admin declares call services, which decide who may: Django would drop
        # them for want of change permission, so they are offered here regardless.
        actions = super().get_actions(request)
        for name in self.actions or ():
            if isinstance(name, str):
                func, action_name, description = _own_action(self, name)
                actions[action_name] = (func, action_name, description)
        return actions


def missing(request: HttpRequest, model_admin: admin.ModelAdmin, pk: object) -> HttpResponse:
    """For an admin page of one object whose id doesn't exist: what the admin's change page answers (back to
    the index, with its message), not a 500."""
    message = f'{model_admin.opts.verbose_name} with ID "{pk}" does not exist. Perhaps it was deleted?'
    model_admin.message_user(request, message, messages.WARNING)
    return HttpResponseRedirect(reverse("admin:index", current_app=model_admin.admin_site.name))


def _own_action(model_admin: admin.ModelAdmin, name: str) -> tuple[Callable[..., Any], str, str]:
    """An action the admin class defines as a method (offered even without change permission)."""
    action = model_admin.get_action(name)
    if action is None:
        raise ImproperlyConfigured(f"{type(model_admin).__name__} defines no action {name!r}.")
    return action


def above_threshold(year: int, approval: int) -> str:
    """What a year-wide run says when four eyes holds it back."""
    return gettext("%(year)s: above the four-eyes threshold, submitted as approval %(id)s.") % {
        "year": year,
        "id": approval,
    }


def submitted(request: HttpRequest, approval: ApprovalRequest) -> HttpResponse:
    messages.warning(
        request,
        gettext(
            "%(summary)s: above the four-eyes threshold, so it waits for another registry user's approval "
            "(request %(id)s)."
        )
        % {"summary": approval.summary, "id": approval.pk},
    )
    return HttpResponseRedirect(reverse("admin:exchange_approvalrequest_change", args=[approval.pk]))


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
