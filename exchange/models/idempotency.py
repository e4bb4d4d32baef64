"""The answers to keyed API requests whose services keep no key of their own.

Services that open a journal entry keep the caller's Idempotency-Key on the ``Transaction`` row
(``exchange.services.ledger.journal_open``). Every other POST that changes something is keyed here, by
``exchange.api.idempotency.idempotent_request``: one row per (scope, key), written in the same database
transaction as the request's effect, so the row exists exactly when the effect does.
"""

from __future__ import annotations

from django.db import models


class IdempotentRequest(models.Model):
    scope = models.CharField(max_length=64, help_text="Whose key it is: participant:<id>, as the journal's.")
    key = models.CharField(max_length=128)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    request_hash = models.CharField(max_length=64, help_text="sha256 of the method, path, query and body.")
    # NULL only inside the first request's own transaction: it is set before that commits.
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer as rendered JSON text, not a JSONField: jsonb reorders keys, and a replay returns the same bytes.
    body = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotent_request_key_unique"),
            models.CheckConstraint(
                condition=models.Q(status__isnull=True) | models.Q(status__gte=200, status__lt=300),
                name="idempotent_request_stores_successes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}: {self.method} {self.path} -> {self.status}"
