"""Housekeeping of the answers kept for keyed requests (``exchange.models.IdempotentRequest``).

Journal entries keep their keys for good (nothing posted is deleted). The answers kept for the other
keyed requests are a retry window, not a record: the request's effect and its audit event stand on
their own. They are forgotten after ``GREENLEDGER["IDEMPOTENCY_RETENTION_DAYS"]``, a bounded number at a
time so that a run after a long pause stays short.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exchange.models import IdempotentRequest

BATCH = 10_000


def idempotent_requests_forget(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Delete kept answers older than the retention period, up to ``batch`` of them; return how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.GREENLEDGER["IDEMPOTENCY_RETENTION_DAYS"])
    with transaction.atomic():
        ids = list(
            IdempotentRequest.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch]
        )
        deleted, _ = IdempotentRequest.objects.filter(id__in=ids).delete()
    return deleted
