"""After every row: the books reconcile and the audit trail verifies, or the bench stops.

A row that is fast because it broke an invariant measures nothing. ``reconcile`` runs every check of
``manage.py reconcile``; the audit trail is sealed and verified in full (``verify_audit``, not
``--since-last``, which would miss an edit to an event verified after an earlier row). Neither is timed.

One exception, and only one: the raw-SQL floor of the transfer rows writes bare journal entries (what it
measures is PostgreSQL's own cost of a balanced entry), so it records no audit event for them. Its entries
carry the idempotency scope ``FLOOR_SCOPE``; invariant 5's "every entry has its audit event" is asked of
every other entry. Every other invariant is asked of every entry, the floor's included.
"""

from __future__ import annotations

import time

FLOOR_SCOPE = "bench-floor"
ENTRY_HAS_EVENT = "5 every entry has its audit event"


class BooksBroken(RuntimeError):
    """A bench row left the ledger unreconciled or the audit trail unverified."""


def _entries_without_event() -> list[str]:
    from django.db import connection

    from exchange.selectors import reconcile as rec

    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH {rec._LINKS}
               SELECT t.id, t.kind FROM exchange_transaction t
                WHERE t.idempotency_scope <> '{FLOOR_SCOPE}' AND NOT EXISTS (SELECT 1 FROM links l WHERE l.txn = t.id)
                ORDER BY t.id LIMIT 10"""  # no parameters: the links' LIKE pattern holds a per cent sign
        )
        return [f"[{ENTRY_HAS_EVENT}] transaction {txn} ({kind}) has no audit event" for txn, kind in cursor.fetchall()]


def problems() -> list[str]:
    """Every violation ``reconcile`` finds (but the floor's unaudited entries) and the audit trail's first."""
    from exchange.selectors.reconcile import check_names, reconcile
    from exchange.services.sealing import AuditTampered, audit_seal, audit_verify

    if ENTRY_HAS_EVENT not in check_names():
        raise BooksBroken(f"reconcile has no check named {ENTRY_HAS_EVENT!r}: update bench/checks.py")
    found = [str(v) for v in reconcile() if v.invariant != ENTRY_HAS_EVENT]
    found += _entries_without_event()
    try:
        audit_seal(max_checkpoints=100_000)
    except AuditTampered as exc:  # sealing checks each event's hash before it seals it
        return [*found, f"[audit] {exc}"]
    result = audit_verify()  # the full run: an incremental one would not see an edit to a verified event
    if not result.ok:
        found.append(f"[audit] {result.failure}")
    return found


def books_clean(row: str) -> float:
    """Raise ``BooksBroken`` naming what ``row`` left wrong; return the seconds the checks took."""
    begin = time.perf_counter()
    found = problems()
    if found:
        raise BooksBroken(f"after {row}: {len(found)} problems, first {found[:5]}")
    return time.perf_counter() - begin
