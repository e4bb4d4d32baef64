"""The one store of Idempotency-Keys: one row per (scope, key), whoever claimed it.

Every keyed request that changes something claims its key here through ``exchange.services.idempotency``:
an API POST (``method`` and ``path`` name the endpoint, ``body`` keeps the rendered answer) or a service
called with a key from the admin, a command or a task (``method`` is ``CALL``, ``path`` is
``service:<name>``, ``body`` names the row it made). The row is written in the same database transaction
as the request's effect, so it exists exactly when the effect does.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotentRequest(models.Model):
    scope = models.CharField(max_length=64, help_text=_("Whose key it is: participant:<id>, as the journal's."))
    key = models.CharField(max_length=128)
    method = models.CharField(max_length=8, help_text=_("The HTTP method, or CALL for a keyed service call."))
    path = models.CharField(max_length=300, help_text=_("The endpoint's path, or service:<name>."))
    request_hash = models.CharField(max_length=64, help_text=_("sha256 of the request: what it asked for."))
    # NULL only inside the first request's own transaction: it is set before that commits.
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer as JSON text, not a JSONField: jsonb reorders keys, and a replay returns the same bytes.
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
