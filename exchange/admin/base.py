"""Shared admin classes and helpers: read-only admins and inlines, the pages that answer for a missing
object or an operation submitted for four-eyes approval, and who sees which participant's rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.errors import NoMembership
from exchange.models import ApprovalRequest

# --- who sees which participant's rows -------------------------------------------------------------------
# Registry and exchange staff and auditors (the overseers, as the services call them) and superusers see every
# participant's rows; a participant's member sees its own participant's; a staff user with no membership, none.
# The desks' permissions (seed_demo's DEMO_DESKS) decide which pages a user opens; this decides the rows.
ALL_PARTICIPANTS = None


def visible_participant(user: Any) -> int | None:
    """The participant whose rows the user sees in the admin, or ``ALL_PARTICIPANTS`` (``None``) for a
    superuser or an overseer's member; ``0`` (no participant) for a user with no membership."""
    if user.is_superuser:
        return ALL_PARTICIPANTS
    try:
        actor = Actor.for_user(user)
    except NoMembership:
        return 0
    return ALL_PARTICIPANTS if actor.sees_everything else actor.member_participant_id


def sees_every_participant(user: Any) -> bool:
    return visible_participant(user) is ALL_PARTICIPANTS


def own_rows(queryset: QuerySet[Any], user: Any, *paths: str) -> QuerySet[Any]:
    """The rows of ``queryset`` the user sees: all of them, or those whose participant at one of ``paths``
    (``"borrower"``, ``"loan__lender"``) is the user's."""
    participant = visible_participant(user)
    if participant is ALL_PARTICIPANTS:
        return queryset
    if not participant or not paths:
        return queryset.none()
    match = Q()
    for path in paths:
        match |= Q(**{path: participant})
    return queryset.filter(match)


class ParticipantScopedAdmin(admin.ModelAdmin):
    """An admin whose lists, pages and actions hold only the rows the user's participant is party to (an
    overseer sees all): ``participant_paths`` names where a row's participant is; another participant's id in
    the URL is a 404, as for a missing row. ``own_choices`` maps a foreign key of the add and change forms to
    the path from its choices to their participant: a participant's member chooses among its own (its own
    accounts), typed in a plain list rather than an autocomplete, which would search every participant's."""

    participant_paths: tuple[str, ...] = ()
    own_choices: dict[str, str] = {}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return own_rows(super().get_queryset(request), request.user, *self.participant_paths)

    def get_autocomplete_fields(self, request: HttpRequest) -> Any:
        if sees_every_participant(request.user):
            return super().get_autocomplete_fields(request)
        return ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in self.own_choices and not sees_every_participant(request.user):
            choices = db_field.remote_field.model._default_manager.all()
            kwargs["queryset"] = own_rows(choices, request.user, self.own_choices[db_field.name])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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
