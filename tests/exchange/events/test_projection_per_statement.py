"""Many audit events written by one INSERT (a matching engine's batch) are projected once for the statement: each
participant's numbers stay gapless and in audit-event order across the statement's events, each concerned
participant is notified once, and events whose routes concern nobody write nothing."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from core import clock
from exchange.models import AuditEvent, EventRoute, ParticipantEvent, ParticipantEventCounter
from exchange.services.audit import audit_record, audit_records
from tests.factories import ParticipantFactory
from tests.helpers.pledges import make_pledges

ACTION = "thing.batch"


def routes() -> None:
    """Two routes for one action: each event tells the participants named ``who`` and ``also`` (nobody for a
    null)."""
    EventRoute.objects.create(
        action=ACTION,
        event_type="thing.happened",
        resolver="row",
        args={"table": "accounts_participant", "columns": ["id"], "key": "who", "fields": ["n"]},
    )
    EventRoute.objects.create(
        action=ACTION,
        event_type="thing.seen",
        resolver="row",
        args={"table": "accounts_participant", "columns": ["id"], "key": "also", "fields": ["n"]},
    )


def entries(actor, payloads: list[dict]) -> list[tuple]:
    at = clock.now()
    return [(actor, ACTION, ("thing", i), payload, at) for i, payload in enumerate(payloads, start=1)]


def numbered(participant) -> list[tuple[int, str, int, int]]:
    return list(
        ParticipantEvent.objects.filter(participant=participant)
        .order_by("number")
        .values_list("number", "type", "audit_seq", "payload__n")
    )


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 40])  # a few participant events (numbered one counter at a time), many (set-wise)
def test_one_insert_of_many_events_numbers_each_participant_gapless_in_audit_order(count):
    p = make_pledges()
    actor = p.borrower[2]
    a, b, c = (ParticipantFactory() for _ in range(3))
    routes()
    # A participant with events already: the statement's continue after its last number.
    with transaction.atomic():
        audit_record(actor=actor, action=ACTION, obj=("thing", 0), payload={"n": 0, "who": b.pk, "also": None})
    payloads = [{"n": i, "who": (a, b, c)[i % 3].pk, "also": a.pk if i % 2 else None} for i in range(1, count + 1)]

    with transaction.atomic():
        written = audit_records(entries(actor, payloads))

    seqs = [seq for seq, _ in written]
    assert seqs == sorted(seqs)
    for participant in (a, b, c):
        events = numbered(participant)
        expected = []
        for seq, payload in zip(seqs, payloads, strict=True):
            if payload["who"] == participant.pk:
                expected.append(("thing.happened", seq, str(payload["n"])))
            if payload.get("also") == participant.pk:
                expected.append(("thing.seen", seq, str(payload["n"])))
        if participant == b:
            expected.insert(0, ("thing.happened", events[0][2], "0"))
        assert [(t, s, n) for _, t, s, n in events] == expected
        assert [number for number, *_ in events] == list(range(1, len(expected) + 1))
        assert ParticipantEventCounter.objects.get(participant_id=participant.pk).last_number == len(expected)
    # The statement's events in id order are its participant events in audit-event order.
    new = list(ParticipantEvent.objects.filter(audit_seq__in=seqs).order_by("id").values_list("audit_seq", flat=True))
    assert new == sorted(new)


@pytest.mark.django_db
def test_events_whose_routes_concern_nobody_write_nothing_beside_those_that_do():
    p = make_pledges()
    actor = p.borrower[2]
    a = ParticipantFactory()
    routes()
    events_before, counters_before = ParticipantEvent.objects.count(), ParticipantEventCounter.objects.count()

    with transaction.atomic():
        audit_records(entries(actor, [{"n": 1, "who": None, "also": None}, {"n": 2, "who": None, "also": None}]))
        audit_records([(actor, "nothing.routed", ("thing", 9), {"n": 3}, clock.now())])

    assert ParticipantEvent.objects.count() == events_before
    assert ParticipantEventCounter.objects.count() == counters_before

    with transaction.atomic():
        written = audit_records(
            entries(actor, [{"n": n, "who": a.pk if n == 2 else None, "also": None} for n in (1, 2, 3)])
        )

    assert numbered(a) == [(1, "thing.happened", written[1][0], "2")]
    assert AuditEvent.objects.filter(action=ACTION).count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [4, 30])
def test_a_statement_of_many_events_notifies_each_concerned_participant_once_at_commit(count):
    p = make_pledges()
    actor = p.borrower[2]
    a, b, nobody = (ParticipantFactory() for _ in range(3))
    routes()
    settings = connection.settings_dict
    listener = psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )
    try:
        listener.execute("LISTEN greenledger_events")
        with transaction.atomic():
            audit_records(entries(actor, [{"n": i, "who": (a, b)[i % 2].pk, "also": a.pk} for i in range(count)]))
            assert not list(listener.notifies(timeout=0.2))  # nothing before commit
        got = sorted(int(n.payload) for n in listener.notifies(timeout=1, stop_after=3))
    finally:
        listener.close()
    assert got == sorted([a.pk, b.pk])
    assert nobody.pk not in got
    assert len(numbered(a)) == count + count // 2
    assert len(numbered(b)) == count // 2
