"""The audit trail, read-only: events and the sealed checkpoints over them."""

from __future__ import annotations

from django.contrib import admin

from exchange.admin.base import ReadOnlyAdmin
from exchange.models import AuditEvent, Checkpoint


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor_label"]


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["number", "first_seq", "last_seq", "count", "root", "sealed_at"]
