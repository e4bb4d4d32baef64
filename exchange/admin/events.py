"""Admin for participant events and webhooks: staff see each participant's events, its endpoints, every
delivery with each attempt's answer, and which endpoints are failing; nobody edits them (participants
register and enable their endpoints through the API; the delivery job alone records deliveries)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from exchange.admin.base import ReadOnlyAdmin
from exchange.models import ParticipantEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from exchange.services.webhooks import webhooks_deliver


@admin.register(ParticipantEvent)
class ParticipantEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "participant", "number", "type", "audit_seq"]
    list_filter = ["type"]
    search_fields = ["participant__name", "type"]
    list_select_related = ["participant"]
    readonly_fields = ["participant", "number", "type", "payload", "audit_seq", "created_at"]


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["number", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at"]
    readonly_fields = cast(list[str], fields)  # the stubs widen fields to groups; these are names
    ordering = ["-number"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "participant", "url", "status", "cursor", "created_at", "status_changed_at"]
    list_filter = ["status"]
    search_fields = ["participant__name", "url"]
    list_select_related = ["participant"]
    readonly_fields = [
        "participant",
        "url",
        "types",
        "status",
        "cursor",
        "description",
        "created_at",
        "status_changed_at",
    ]
    exclude = ["secret"]
    inlines = [WebhookDeliveryInline]
    actions = ["deliver_now"]

    @admin.action(description=_("Send what is due to the selected active endpoints now"))
    def deliver_now(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        sent = webhooks_deliver(endpoint_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(count)d deliveries acknowledged.") % {"count": sent}, messages.INFO)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["at", "status_code", "response", "error", "duration_ms"]
    readonly_fields = cast(list[str], fields)  # the stubs widen fields to groups; these are names
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "endpoint", "number", "status", "attempts", "last_status_code", "created_at", "delivered_at"]
    list_filter = ["status"]
    search_fields = ["endpoint__url", "endpoint__participant__name"]
    list_select_related = ["endpoint"]
    readonly_fields = [
        "endpoint",
        "event",
        "number",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_response",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    inlines = [WebhookAttemptInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("endpoint__participant")
