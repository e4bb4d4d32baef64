"""Recording audit events.

``audit_record`` writes an ``AuditEvent`` in the caller's database transaction. It takes the audit
writers' shared advisory lock (``exchange.locks``) before drawing the event's sequence number, and holds
it until commit: the sealer takes the same lock exclusively to learn a horizon below which every event
has committed (see ``exchange.services.sealing``). The event is written by the database function
``greenledger_audit_record`` (``exchange/sql``), which every event goes through, and hashed there by
``greenledger_event_hash``.

The ``@service`` decorator that makes every service record an event is defined in ``core.service``
(which imports no app); the services import it, and its companions, from here. ``ExchangeConfig.ready``
installs ``audit_record`` as the recorder that ``core.service.audit_record`` calls for the apps below exchange.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection

from accounts.actors import Actor
from core import clock
from core.db import in_pipeline
from core.service import (  # noqa: F401 - the service wrapper's names, imported from here by the services
    RETRIES,
    SERVICES,
    is_retryable,
    mark_replayed,
    mark_unchanged,
    note_recorded,
    recording_service_calls,
    service,
)
from exchange.audit_proof import canonical_json, event_body, format_time
from exchange.bulk import pg_array
from exchange.locks import AUDIT_LOCK_KEY
from exchange.models import AuditEvent


def _object_ref(obj: Any) -> tuple[str, str]:
    if isinstance(obj, tuple):
        return str(obj[0]), str(obj[1])
    return obj._meta.model_name, str(obj.pk)


class AuditRef:
    """An event's sequence number and hash, read when first asked for (``seq, digest = ref`` works too).

    In pipeline mode the event's INSERT is queued with the writes before it and its answer is read only if
    someone asks, so recording it costs no round trip of its own.
    """

    __slots__ = ("_cursor", "_row")

    def __init__(self, cursor: Any = None, row: tuple[int, str] | None = None) -> None:
        self._cursor, self._row = cursor, row

    def _get(self) -> tuple[int, str]:
        if self._row is None:
            with connection.wrap_database_errors:
                self._row = tuple(self._cursor.fetchone())
            self._cursor.close()
        return self._row

    @property
    def seq(self) -> int:
        return self._get()[0]

    @property
    def hash(self) -> str:
        return self._get()[1]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())

    def __getitem__(self, index: int) -> Any:
        return self._get()[index]


def _event_row(
    actor: Actor, action: str, obj: Any, payload: dict[str, Any], moment: datetime
) -> tuple[tuple[Any, ...], str]:
    """An event's columns (time, user, participant, label, action, object type and id, payload text) and its
    canonical body, which the database hashes."""
    object_type, object_id = _object_ref(obj)
    payload_text = canonical_json(payload)
    body = event_body(
        time=format_time(moment),
        action=action,
        actor_label=actor.label,
        actor_user=actor.user_id,
        actor_participant=actor.participant_id,
        object_type=object_type,
        object_id=object_id,
        payload=payload_text,
    )
    row = (moment, actor.user_id, actor.participant_id, actor.label, action, object_type, object_id, payload_text)
    return row, body


def audit_record(
    *, actor: Actor, action: str, obj: Any, payload: dict[str, Any], at: datetime | None = None
) -> AuditRef:
    """Write one audit event in the current transaction; return its sequence number and hash.

    ``obj`` is a model instance or a ``(type, id)`` pair. ``payload`` becomes canonical JSON:
    quantities and money must be ints or Decimals (written as strings), never floats.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    moment = at or clock.now()
    row, body = _event_row(actor, action, obj, payload, moment)
    # One statement (exchange/sql/greenledger_audit_record.sql): the writers' lock, the number, the hash.
    cursor = connection.cursor()
    cursor.execute(
        "SELECT * FROM greenledger_audit_record(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", [*row, body, AUDIT_LOCK_KEY]
    )
    ref = AuditRef(cursor)
    if not in_pipeline():
        ref._get()
    note_recorded()
    return ref


def audit_records(entries: list[tuple[Actor, str, Any, dict[str, Any], datetime]]) -> list[tuple[int, str]]:
    """Write many audit events in one statement, in the order given; return their sequence numbers and hashes.

    Each entry is ``(actor, action, obj, payload, at)`` as ``audit_record`` takes them, and each event is the one
    ``audit_record`` would write (``greenledger_audit_records``, ``exchange/sql``): the same lock, numbers drawn in
    the order given, the same hash of each number and canonical body.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_records must run inside the transaction of the changes they record")
    if not entries:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM greenledger_audit_records(" + ", ".join(f"%s::{t}[]" for t in AUDIT_ARRAY_TYPES) + ", %s)",
            [*audit_arrays(entries), AUDIT_LOCK_KEY],
        )
        written = [(int(seq), str(digest)) for seq, digest in cursor.fetchall()]
    for _ in written:
        note_recorded()
    return written


#: The types of ``audit_arrays``' parameters, in order: ``greenledger_audit_records``' arguments but the lock.
AUDIT_ARRAY_TYPES = ("timestamptz", "bigint", "bigint", "text", "text", "text", "text", "text", "text")


def audit_arrays(entries: list[tuple[Actor, str, Any, dict[str, Any], datetime]]) -> list[Any]:
    """The events' columns and canonical bodies as ``greenledger_audit_records`` takes them (one array parameter
    each, typed ``AUDIT_ARRAY_TYPES``), for a database function that writes them with other rows. Its caller
    calls ``note_recorded`` once per event."""
    columns: list[list[Any]] = [[] for _ in range(9)]
    for actor, action, obj, payload, moment in entries:
        row, body = _event_row(actor, action, obj, payload, moment)
        for column, value in zip(columns, (*row, body), strict=True):
            column.append(value)
    return [pg_array(c, t) for c, t in zip(columns, AUDIT_ARRAY_TYPES, strict=True)]


def body_of(event: AuditEvent) -> str:
    """Rebuild an event's canonical body from its columns (what verification hashes)."""
    return event_body(
        time=format_time(event.created_at),
        action=event.action,
        actor_label=event.actor_label,
        actor_user=event.actor_user_id,
        actor_participant=event.actor_participant_id,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
    )
