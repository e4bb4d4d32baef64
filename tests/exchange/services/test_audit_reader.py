"""Sealing and verification read events with the time formatted by PostgreSQL: it must spell every instant
exactly as ``format_time`` does, or every hash would mismatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.actors import Actor
from exchange.audit_proof import format_time
from exchange.models import AuditEvent
from exchange.services.audit import audit_record, service
from exchange.services.sealing import EVENT_COLUMNS, _events, audit_verify

pytestmark = pytest.mark.django_db


@service
def _record(*, at: datetime) -> None:
    audit_record(actor=Actor.system("tests"), action="test.time", obj=("test", "1"), payload={}, at=at)


def test_the_reader_spells_each_time_as_format_time():
    moments = [
        datetime(2026, 1, 1, 0, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 9, 30, 0, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 30, 23, 0, 0, 120000, tzinfo=UTC) + timedelta(hours=8),
    ]
    for moment in moments:
        _record(at=moment)

    rows = list(_events(1, 2**62))

    expected = {e.seq: format_time(e.created_at) for e in AuditEvent.objects.all()}
    assert {row[0]: (row[1] if isinstance(row[1], str) else format_time(row[1])) for row in rows} == expected
    assert len(rows[0]) == len(EVENT_COLUMNS)
    assert audit_verify().ok
