"""Notices to participants (margin calls, maturity, default, enforcement, approvals waiting): an outbox.

A notice is written in the same database transaction as what caused it, so a cause never commits without
its notice and a rolled-back cause leaves none. A job sends the pending ones (``exchange.notices_send``);
a notice is ``delivered`` only once the mail server has accepted it, a failed send is retried with
backoff, and after ``MAX_ATTEMPTS`` it is ``failed`` and stays visible for staff to act on.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant


class NoticeKind(models.TextChoices):
    MARGIN_CALL = "margin_call", _("margin call")
    PAST_MATURITY = "past_maturity", _("past maturity")
    DEFAULT = "default", _("default")
    ENFORCEMENT = "enforcement", _("enforcement")
    APPROVAL_WAITING = "approval_waiting", _("approval waiting")
    WEBHOOK_FAILING = "webhook_failing", _("webhook failing")


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")


class Notice(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="notices")
    kind = models.CharField(max_length=24, choices=NoticeKind.choices)
    address = models.EmailField(help_text=_("Where it is sent (the participant's notice address then)."))
    subject = models.CharField(max_length=300)
    body = models.TextField()
    object_type = models.CharField(max_length=40, help_text=_("What caused it, e.g. margin_call."))
    object_id = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=NoticeStatus.choices, default=NoticeStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text=_("A pending notice is not sent before this time."))
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="notice_pending_due", condition=models.Q(status="pending")
            ),
            models.Index(fields=["participant", "-id"], name="notice_participant"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="delivered", delivered_at__isnull=False)
                | (~models.Q(status="delivered") & models.Q(delivered_at__isnull=True)),
                name="notice_delivered_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.address} ({self.status})"
