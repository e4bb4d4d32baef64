"""The tamper-evident audit trail.

Every state change writes an ``AuditEvent`` in the same database transaction. Its ``hash`` is
SHA-256 over ``"<seq>|<body>"`` where ``body`` is canonical JSON of the event (see
``exchange.audit_proof``). Sealing groups committed events into ``Checkpoint`` rows: the Merkle root of
their hashes, chained to the previous checkpoint's hash. Both tables are append-only (PostgreSQL
triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant


class AuditEvent(models.Model):
    seq = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )  # audit_actor_idx leads with it
    actor_label = models.CharField(max_length=100)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    payload = models.TextField(help_text=_("Canonical JSON: sorted keys, no whitespace, numbers as strings."))
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["action", "seq"], name="audit_action_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor_participant", "seq"], name="audit_actor_idx"),
            models.Index(fields=["created_at"], name="audit_time_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    @property
    def payload_json(self) -> Any:
        """The payload parsed (it is stored as the canonical text that was hashed)."""
        return json.loads(self.payload)


class Checkpoint(models.Model):
    """A sealed range of audit events, chained to the previous checkpoint."""

    number = models.BigIntegerField(primary_key=True)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    count = models.BigIntegerField()
    gaps = models.TextField(
        default="[]", help_text=_("Sequence numbers in the range that no committed event holds (rolled back).")
    )
    root = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField()
    # Not hashed: the signature is over the hash (exchange.audit_signing), the leaves are what the root covers.
    key_id = models.CharField(max_length=16, blank=True, default="", help_text=_("The signing key's id."))
    signature = models.CharField(max_length=100, blank=True, default="", help_text=_("Ed25519, base64."))
    leaves = models.BinaryField(
        null=True,
        blank=True,
        help_text=_(
            "The sealed event hashes, 32 bytes each in order: verification names an event edited and "
            "rehashed after sealing."
        ),
    )

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(number__gte=1, last_seq__gte=models.F("first_seq"), count__gte=1),
                name="checkpoint_range_valid",
            ),
            models.UniqueConstraint(fields=["first_seq"], name="checkpoint_first_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.number}: events {self.first_seq}..{self.last_seq}"


class AuditVerification(models.Model):
    """A verification run that found the trail intact through a checkpoint: where the next incremental run
    (``manage.py verify_audit --since-last``) starts. Append-only. A full run remains the guarantee: the
    incremental one checks that the checkpoint it resumes after still has the hash recorded here, then
    verifies only the checkpoints sealed since and the events not yet sealed."""

    through_number = models.BigIntegerField(help_text=_("The last checkpoint this run verified."))
    through_hash = models.CharField(max_length=64, help_text=_("That checkpoint's hash when it was verified."))
    events = models.BigIntegerField(help_text=_("Events this run verified."))
    full = models.BooleanField(help_text=_("Whether the run verified the whole trail or resumed after an earlier run."))
    verified_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"audit verified through checkpoint {self.through_number}"
