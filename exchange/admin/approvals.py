"""Four-eyes approval requests: a registry user other than the requester approves or rejects."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from accounts.admin import run_service
from core.i18n import registry_text
from exchange.admin.base import ReadOnlyAdmin
from exchange.models import ApprovalRequest
from exchange.services.approvals import approval_approve, approval_reject


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Four eyes: a registry user other than the requester approves (carrying the operation out) or rejects."""

    list_display = ["id", "summary", "quantity", "status", "requested_by", "requested_at", "decided_by", "decided_at"]
    list_filter = ["status", "operation"]
    actions = ["approve", "reject"]

    @admin.action(description=_("Approve and carry out the selected requests"))
    def approve(self, request: HttpRequest, queryset: QuerySet[ApprovalRequest]) -> None:
        for approval in queryset:
            done = run_service(request, lambda actor, a=approval: approval_approve(actor=actor, approval=a))
            if done is not None:
                messages.success(
                    request,
                    gettext("Approved request %(id)s: %(summary)s (%(result)s).")
                    % {"id": done.pk, "summary": done.summary, "result": done.result},
                )

    @admin.action(description=_("Reject the selected requests"))
    def reject(self, request: HttpRequest, queryset: QuerySet[ApprovalRequest]) -> None:
        for approval in queryset:
            done = run_service(
                request,
                lambda actor, a=approval: approval_reject(
                    actor=actor, approval=a, reason=registry_text(gettext_noop("rejected in admin"))
                ),
            )
            if done is not None:
                messages.success(request, gettext("Rejected request %(id)s.") % {"id": done.pk})
