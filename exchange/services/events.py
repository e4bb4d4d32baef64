"""Forgetting participant events after their retention (``EVENTS_RETENTION_DAYS``).

A stream resumes and a webhook retries only within the retention: an event older than it is deleted with
its deliveries by the ``events-forget`` job. The audit trail keeps what every event was projected from.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import transaction

from core import clock
from exchange.models import ParticipantEvent

BATCH = 10_000


def events_forget(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Delete events older than the retention, up to ``batch`` of them; return how many."""
    cutoff = (now or clock.now()) - timedelta(days=cast(int, settings.GREENLEDGER["EVENTS_RETENTION_DAYS"]))
    with transaction.atomic():
        ids = list(
            ParticipantEvent.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch]
        )
        deleted, _ = ParticipantEvent.objects.filter(id__in=ids).delete()
    return deleted
