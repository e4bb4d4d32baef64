"""Admin for the notice outbox: staff see each notice and whether it was delivered; nobody edits them
(the sending job alone moves a notice to delivered or failed)."""

from __future__ import annotations

from django.contrib import admin

from exchange.admin.base import ReadOnlyAdmin
from exchange.models import Notice


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "kind", "participant", "address", "status", "attempts", "delivered_at"]
    list_filter = ["status", "kind"]
    search_fields = ["participant__name", "address", "subject", "object_id"]
    list_select_related = ["participant"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "participant",
        "kind",
        "address",
        "subject",
        "body",
        "object_type",
        "object_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
    ]
