"""The journal and its derived rows, read-only: transactions with their postings and serial movements,
postings, balances and holds."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from exchange.admin.base import ReadOnlyAdmin
from exchange.models import Balance, Hold, Posting, SerialMovement, Transaction


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "asset", "quantity", "balance_after")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MovementInline(admin.TabularInline):
    model = SerialMovement
    fields = ("asset", "first", "last", "source", "destination", "state")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "created_at", "actor_label", "memo"]
    list_filter = ["kind"]
    search_fields = ["id", "memo", "idempotency_key"]
    inlines = [PostingInline, MovementInline]
    readonly_fields = [
        "kind",
        "created_at",
        "actor_user",
        "actor_participant",
        "actor_label",
        "idempotency_scope",
        "idempotency_key",
        "request_hash",
        "memo",
        "metadata",
    ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["id", "transaction", "account", "asset", "quantity", "balance_after"]
    list_filter = ["asset"]
    search_fields = ["account__number", "transaction__id"]
    list_select_related = ["account", "asset", "transaction"]


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["account", "asset", "total", "held", "available"]
    list_filter = ["asset"]
    search_fields = ["account__number", "account__participant__name"]
    list_select_related = ["account", "asset"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "asset",
        "kind",
        "reference",
        "quantity",
        "remaining",
        "status",
        "created_at",
        "ended_at",
    ]
    list_filter = ["kind", "status", "asset"]
    search_fields = ["reference", "account__number"]
