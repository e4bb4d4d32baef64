"""Participant events (the outbox of the live feed) and the webhooks that deliver them.

A ``ParticipantEvent`` is written in the database transaction of the audit event it projects (the
``greenledger_event_project`` trigger on the audit table, ``exchange/sql``), one row per participant the
event concerns, with a ``number`` that increases by one per participant with no gap: the participant's
``ParticipantEventCounter`` row is locked and advanced in that same transaction, so numbers commit in
order and a reader that has seen number N has seen every number below it. Which audit actions become
which events is one mapping, ``exchange.events.ROUTES``, kept in ``EventRoute`` for the trigger.

Events are never updated; they are forgotten after ``EVENTS_RETENTION_DAYS``. Webhook endpoints receive
a participant's events in number order, at least once (``exchange.services.webhooks``).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant


class EventRoute(models.Model):
    """One row of ``exchange.events.ROUTES`` (written by ``exchange.events.sync``): what an audit action becomes."""

    action = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    resolver = models.CharField(
        max_length=32, help_text=_("How the participants it concerns and what each sees are found (exchange/sql).")
    )
    args = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["action", "event_type"], name="eventroute_unique")]
        indexes = [models.Index(fields=["action"], name="eventroute_action_idx")]

    def __str__(self) -> str:
        return f"{self.action} -> {self.event_type}"


class ParticipantEventCounter(models.Model):
    """The last event number handed to a participant (locked and advanced in the event's transaction)."""

    # No database foreign key (see ParticipantEvent.participant): the projection writes only ids it read from
    # rows that reference the participant in the same transaction.
    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, primary_key=True, related_name="+", db_constraint=False
    )
    last_number = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.last_number}"


class ParticipantEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Neither an index of its own (the unique (participant, number) leads with it) nor a database foreign key:
    # a deferred foreign key is one more lookup and row lock (FOR KEY SHARE on the participant) per event at
    # commit, and the projection names only participants it has just read from the rows of the event's cause
    # (accounts, orders, pledges ...), each held to its participant by its own foreign key.
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="events", db_index=False, db_constraint=False
    )
    number = models.BigIntegerField(help_text=_("The participant's own event id: 1, 2, 3 ... with no gap."))
    type = models.CharField(max_length=64)
    payload = models.JSONField(help_text=_("What this participant may see of the event."))
    audit_seq = models.BigIntegerField(help_text=_("The audit event this event was projected from."))
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["participant", "number"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "number"], name="participantevent_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="participantevent_number_positive"),
        ]
        # No index but the primary key and this unique one: each costs every transfer a write. Forgetting old
        # events walks the primary key from the oldest (ids grow with time); an event's audit event is found
        # from the audit side.

    def __str__(self) -> str:
        return f"{self.participant_id}#{self.number} {self.type}"


class WebhookStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    FAILING = "failing", _("failing")
    DISABLED = "disabled", _("disabled")


class WebhookEndpoint(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=500, verbose_name=_("URL"))
    secret = models.CharField(max_length=100, help_text=_("The HMAC-SHA256 key the deliveries are signed with."))
    types = models.JSONField(default=list, blank=True, help_text=_("Event types delivered; empty means all."))
    status = models.CharField(max_length=10, choices=WebhookStatus.choices, default=WebhookStatus.ACTIVE)
    cursor = models.BigIntegerField(
        default=0, help_text=_("The participant's event number up to which deliveries are acknowledged or skipped.")
    )
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("webhook endpoint")

    def __str__(self) -> str:
        return f"{self.url} ({self.status})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")


class WebhookDelivery(models.Model):
    """One event to one endpoint: its attempts and the last response (each attempt in ``WebhookAttempt``)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    event = models.ForeignKey(ParticipantEvent, on_delete=models.CASCADE, related_name="deliveries")
    number = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True, help_text=_("The first 1,000 characters of the last answer."))
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["endpoint", "number"]
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhookdelivery_unique")]

    def __str__(self) -> str:
        return f"{self.endpoint_id}#{self.number} {self.status}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at}: {self.status_code or self.error}"
