"""The audit event hash has one formula: the database's ``greenledger_event_hash`` and the stdlib-only
proof checker's ``event_hash`` agree, and every event written is hashed by it."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from accounts.actors import Actor
from exchange.audit_proof import event_hash
from exchange.models import AuditEvent
from exchange.services.audit import audit_record, body_of

pytestmark = [pytest.mark.django_db]

BODIES = [
    "",
    "{}",
    '{"action":"transfer.create","payload":"{\\"memo\\":\\"碳 \\\\u0007 \\\\\\"q\\\\\\"\\"}"}',
    "pipe | in | body",
    "emoji \U0001f333 and nul-free control \x7f",
]


@pytest.mark.parametrize("seq", [1, 42, 9_007_199_254_740_993])
@pytest.mark.parametrize("body", BODIES)
def test_the_database_and_the_proof_checker_hash_an_event_alike(seq, body):
    with connection.cursor() as cursor:
        cursor.execute("SELECT greenledger_event_hash(%s, %s)", [seq, body])
        (digest,) = cursor.fetchone()

    assert digest == event_hash(seq, body)


def test_a_recorded_event_carries_the_hash_of_its_body():
    with transaction.atomic():
        ref = audit_record(
            actor=Actor.system("hash-test"), action="test.hash", obj=("thing", "7"), payload={"memo": "碳 | \x07"}
        )

    event = AuditEvent.objects.get(seq=ref.seq)
    assert event.hash == ref.hash == event_hash(event.seq, body_of(event))


@pytest.mark.parametrize(("user", "participant"), [(None, None), (7, None), (None, 12), (3, 4)])
@pytest.mark.parametrize(
    "text", ["transfer.create", 'memo "quoted" \\ back', "碳 \u0007 control", "emoji \U0001f333", ""]
)
def test_the_verifiers_positional_digest_is_the_event_hash_of_the_event_body(user, participant, text):
    from exchange.audit_proof import event_body, event_digest

    fields = {
        "time": "2026-12-02T22:45:01.123456Z",
        "action": text,
        "actor_label": f"user:{text}",
        "actor_user": user,
        "actor_participant": participant,
        "object_type": "transaction",
        "object_id": text or "1",
        "payload": '{"memo":"x"}',
    }
    digest = event_digest(
        42,
        fields["time"],
        user,
        participant,
        fields["actor_label"],
        text,
        "transaction",
        fields["object_id"],
        '{"memo":"x"}',
    )
    assert digest.hex() == event_hash(42, event_body(**fields))
