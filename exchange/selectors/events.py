"""A participant's events, read by number (the list API, the stream and the webhooks read them here).

Numbers are per participant and commit in order with no gap (``exchange.models.events``), so "the events
after N" read now are exactly the ones a reader that has seen N has not seen, and stay so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from exchange.models import ParticipantEvent


def events_after(
    participant_id: int, *, after: int = 0, types: Iterable[str] = (), limit: int = 100
) -> QuerySet[ParticipantEvent]:
    """The participant's events numbered above ``after``, of ``types`` (all when empty), oldest first."""
    queryset = ParticipantEvent.objects.filter(participant_id=participant_id, number__gt=after)
    wanted = list(types)
    if wanted:
        queryset = queryset.filter(type__in=wanted)
    return queryset.order_by("number")[:limit]


def latest_number(participant_id: int) -> int:
    """The participant's last event number (0 if none yet)."""
    last = ParticipantEvent.objects.filter(participant_id=participant_id).order_by("-number").values("number").first()
    return last["number"] if last else 0


def event_json(event: ParticipantEvent) -> dict[str, Any]:
    """An event as the API, the stream and the webhooks show it."""
    return {
        "id": event.number,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "audit_seq": event.audit_seq,
        "data": event.payload,
    }
