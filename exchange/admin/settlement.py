"""Settlement batches, and the page that settles the trades waiting now."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext as _

from accounts.admin import admin_actor
from accounts.models import ParticipantKind
from core.errors import DomainError
from exchange.admin.base import ReadOnlyAdmin
from exchange.models import SettlementBatch
from exchange.services.settlement import settlement_run


@admin.register(SettlementBatch)
class SettlementBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "trades_count",
        "units_total",
        "cash_total_fen",
        "fees_total_fen",
        "holds_released",
        "initiated_by",
        "started_at",
        "completed_at",
    ]
    change_list_template = "admin/exchange/settlementbatch_changelist.html"

    def get_urls(self) -> list[Any]:
        return [
            path("settle-now/", self.admin_site.admin_view(self.settle_now), name="exchange_settlementbatch_settle"),
            *super().get_urls(),
        ]

    def settle_now(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:exchange_settlementbatch_changelist"))
        try:
            actor = admin_actor(request)
            actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)  # the settlement body
            batch = settlement_run(actor=actor)
        except DomainError as exc:
            messages.error(request, f"{exc.message} ({exc.code})")
        else:
            messages.success(
                request,
                _("Settlement batch %(id)s: %(count)s trades settled.") % {"id": batch.pk, "count": batch.trades_count},
            )
        return HttpResponseRedirect(reverse("admin:exchange_settlementbatch_changelist"))
