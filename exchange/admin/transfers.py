"""Trusted destination accounts and the pending transfers waiting for their delay."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin import run_service
from core.text import sentence
from exchange.admin.base import ReadOnlyAdmin
from exchange.models import PendingTransfer, TrustedAccount
from exchange.services.trust import trusted_account_approve, trusted_account_remove


@admin.register(TrustedAccount)
class TrustedAccountAdmin(ReadOnlyAdmin):
    """Participants' trusted destination accounts; a second admin of the participant approves in the API,
    or here if they act for that participant."""

    list_display = ["participant", "account", "label", "status", "proposed_by", "approved_by", "effective_at"]
    list_filter = ["status"]
    search_fields = ["participant__name", "account__number"]
    actions = ["approve", "remove"]

    @admin.action(description=_("Approve the selected entries (a second admin of their participant)"))
    def approve(self, request: HttpRequest, queryset: QuerySet[TrustedAccount]) -> None:
        for entry in queryset:
            run_service(
                request,
                lambda actor, e=entry: trusted_account_approve(actor=actor, entry=e),
                sentence(f"Approved {entry}"),
            )

    @admin.action(description=_("Remove the selected entries from their trusted lists"))
    def remove(self, request: HttpRequest, queryset: QuerySet[TrustedAccount]) -> None:
        for entry in queryset:
            run_service(
                request,
                lambda actor, e=entry: trusted_account_remove(actor=actor, entry=e),
                sentence(f"Removed {entry}"),
            )


@admin.register(PendingTransfer)
class PendingTransferAdmin(ReadOnlyAdmin):
    """Transfers to untrusted accounts waiting for their delay (the sender cancels them on the API)."""

    list_display = [
        "id",
        "participant",
        "source",
        "destination",
        "asset",
        "quantity",
        "status",
        "execute_after",
        "transaction",
    ]
    list_filter = ["status", "asset"]
    search_fields = ["source__number", "destination__number", "participant__name"]
    list_select_related = ["participant", "source", "destination", "asset"]
