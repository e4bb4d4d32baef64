"""Admin for participants, memberships and tokens. Every change goes through accounts.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts.actors import Actor
from accounts.models import ApiToken, Membership, Participant
from accounts.services import (
    api_token_create,
    api_token_revoke,
    membership_create,
    membership_set_role,
    participant_create,
    participant_reactivate,
    participant_suspend,
    participant_update,
)
from core.errors import DomainError


def admin_actor(request: HttpRequest) -> Actor:
    return Actor.for_user(request.user)


def run_service(request: HttpRequest, call: Any, success: str | None = None) -> Any:
    """Call a service for an admin page; show a refusal as an error message instead of a 500."""
    try:
        result = call(admin_actor(request))
    except DomainError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
        return None
    if success:
        messages.success(request, success)
    return result


class ServiceSaveMixin:
    """Admin saves that call a service; a refusal becomes a form error and nothing is saved."""

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        result = self.call_service(admin_actor(request), obj, form, change)  # type: ignore[attr-defined]
        if result is not None and result is not obj:
            obj.pk = result.pk

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]
        except DomainError as exc:
            messages.error(request, f"{exc.message} ({exc.code})")
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.path)


@admin.register(Participant)
class ParticipantAdmin(ServiceSaveMixin, admin.ModelAdmin):
    list_display = ["name", "kind", "uscc", "status", "email", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "uscc"]
    actions = ["suspend", "reactivate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Participant | None = None) -> list[str]:
        return ["kind", "uscc", "status", "created_at"] if obj else ["status", "created_at"]

    def call_service(self, actor: Actor, obj: Participant, form: forms.ModelForm, change: bool) -> Participant:
        if change:
            return participant_update(actor=actor, participant=obj, name=obj.name, email=obj.email)
        return participant_create(actor=actor, name=obj.name, kind=obj.kind, uscc=obj.uscc, email=obj.email)

    @admin.action(description=_("Suspend the selected participants (they can still read)"))
    def suspend(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        for participant in queryset:
            run_service(
                request,
                lambda actor, p=participant: participant_suspend(
                    actor=actor, participant=p, reason="suspended in admin"
                ),
                f"{participant.name} suspended.",
            )

    @admin.action(description=_("Reactivate the selected participants"))
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        for participant in queryset:
            run_service(
                request,
                lambda actor, p=participant: participant_reactivate(
                    actor=actor, participant=p, reason="reactivated in admin"
                ),
                f"{participant.name} reactivated.",
            )


@admin.register(Membership)
class MembershipAdmin(ServiceSaveMixin, admin.ModelAdmin):
    list_display = ["user", "participant", "role", "created_at"]
    list_filter = ["role", "participant__kind"]
    search_fields = ["user__username", "participant__name"]
    autocomplete_fields = ["participant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        return ["user", "participant", "created_at"] if obj else ["created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        return False

    def call_service(self, actor: Actor, obj: Membership, form: forms.ModelForm, change: bool) -> Membership:
        if change:
            return membership_set_role(actor=actor, membership=obj, role=obj.role)
        return membership_create(actor=actor, user=obj.user, participant=obj.participant, role=obj.role)


class ApiTokenIssueForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(membership__isnull=False).order_by("username"), label=_("user")
    )
    name = forms.CharField(max_length=100, label=_("token name"), help_text=_("What it is for, e.g. trading bot."))
    expires_at = forms.DateTimeField(
        required=False, label=_("expires at"), help_text=_("Empty: until revoked. 2027-12-31 18:00, China time.")
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued here ("Issue a token": shown once, on the page that issues it, never stored) or with
    ``manage.py create_token``; listed and revoked here. Who may is the services' rule: the user or an admin
    of their participant issues; they and the registry's admins revoke."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "name", "prefix", "digest", "created_at", "last_used_at", "expires_at", "revoked_at"]
    actions = ["revoke"]
    change_list_template = "admin/accounts/apitoken_changelist.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [
            path("issue/", self.admin_site.admin_view(self.issue_view), name="accounts_apitoken_issue"),
            *super().get_urls(),
        ]

    def issue_view(self, request: HttpRequest) -> HttpResponse:
        """Issue a token and show it once: in this page's answer only (not in a message, which could be kept
        in a cookie), marked not to be cached."""
        form = ApiTokenIssueForm(request.POST or None)
        issued = None
        if request.method == "POST" and form.is_valid():
            try:
                token, text = api_token_create(
                    actor=admin_actor(request),
                    user=form.cleaned_data["user"],
                    name=form.cleaned_data["name"],
                    expires_at=form.cleaned_data["expires_at"],
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                issued = {"token": token, "text": text}
        context = {
            **self.admin_site.each_context(request),
            "title": _("Issue an API token"),
            "opts": self.model._meta,
            "form": form,
            "issued": issued,
        }
        response = TemplateResponse(request, "admin/accounts/apitoken/issue.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            run_service(
                request, lambda actor, t=token: api_token_revoke(actor=actor, token=t), f"Token {token.prefix} revoked."
            )
