"""Sealing audit events into checkpoints and verifying the whole trail (inclusion proofs, a read, are in
``exchange.selectors.audit``).

Sealing never skips an event whose transaction commits late. Event writers hold a shared advisory lock
from the moment they draw a sequence number until they commit (``exchange.services.audit``). The
sealer takes the same lock exclusively in a short transaction of its own: once it has it, every
sequence number drawn so far belongs to a finished transaction, so the committed maximum is a safe
horizon. It waits for that lock only briefly (writers queue behind a waiting sealer) and otherwise
leaves the work to the next run. It then seals ``(last sealed, horizon]``; numbers in that range that no
committed event holds (rolled back) are recorded in the checkpoint as gaps. Sealers serialise on a second
advisory lock and on the checkpoint number (primary key), so two sealers at once still make one chain.

Each checkpoint is signed (Ed25519, ``exchange.audit_signing``) with a key kept outside the database and
keeps the event hashes it sealed (``leaves``). Verification recomputes every event hash from its columns
and compares it with the stored hash and with the hash sealed for it, then every checkpoint's count,
gaps, Merkle root, hash, signature and the chain, and names the first event or checkpoint that does not
match. Compared with a copy of the checkpoint feed kept outside, it also catches a trail rewritten or
cut from any kept checkpoint on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from exchange.audit_proof import (
    GENESIS_HASH,
    ProofProblem,
    checkpoint_hash,
    compare_with_kept,
    event_digest,
    format_time,
    merkle_root,
    merkle_root_of_digests,
    signature_problem,
)
from exchange.audit_signing import sign, signing_key, trusted_public_keys
from exchange.faults import crash_point
from exchange.locks import lock_audit_horizon, lock_sealer
from exchange.models import AuditEvent, AuditVerification, Checkpoint
from exchange.selectors.audit import checkpoint_document
from exchange.selectors.audit import checkpoint_fields as _checkpoint_fields
from exchange.services.audit import service

logger = logging.getLogger("greenledger.audit")

MAX_EVENTS_PER_CHECKPOINT = 100_000
EVENT_COLUMNS = (
    "seq",
    "created_at",
    "actor_user_id",
    "actor_participant_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "payload",
    "hash",
)


class AuditTampered(RuntimeError):
    """An unsealed event's hash does not match its contents: sealing stops and says which."""


# --- sealing ----------------------------------------------------------------------------------------
HORIZON_LOCK_TIMEOUT_MS = 250
HORIZON_TRIES = 4


def safe_horizon() -> int | None:
    """The highest sequence number below which every event's transaction has finished, or None.

    On PostgreSQL this takes the writers' advisory lock exclusively. While the sealer waits for it, new
    writers queue behind it, so the wait is bounded (``lock_timeout``) and retried a few times; a sealer
    that can't get it gives up this round (None) rather than stall the writers.
    """
    table = AuditEvent._meta.db_table
    for attempt in range(HORIZON_TRIES):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                lock_audit_horizon(HORIZON_LOCK_TIMEOUT_MS)
                cursor.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table}")
                return int(cursor.fetchone()[0])
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            logger.info("audit horizon busy; retrying", extra={"attempt": attempt + 1})
            time.sleep(0.05 * (attempt + 1))
    logger.warning("audit sealing skipped: long-running writers held the horizon lock; the next run retries")
    return None


def _row_digest(row: tuple[Any, ...]) -> bytes:
    """The event hash recomputed from a row of ``_events`` (EVENT_COLUMNS), as its 32 bytes."""
    seq, created_at, user, participant, label, action, object_type, object_id, payload, _ = row
    time = created_at if isinstance(created_at, str) else format_time(created_at)
    return event_digest(seq, time, user, participant, label, action, object_type, object_id, payload)


def _row_hash(row: tuple[Any, ...]) -> str:
    return _row_digest(row).hex()


# On PostgreSQL the time comes formatted as ``format_time`` formats it (UTC, microseconds, "Z"): a million
# rows then cost no datetime objects. Both spell the same instant the same way; the tests hold them equal.
_PG_TIME = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _events(first: int, last: int, chunk: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Events with first <= seq <= last in order, read in keyset chunks (EVENT_COLUMNS, as plain tuples)."""
    after = first - 1
    columns = ", ".join(_PG_TIME if c == "created_at" else c for c in EVENT_COLUMNS)
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        while after < last:
            cursor.execute(
                f"SELECT {columns} FROM {table} WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                [after, last, chunk],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]


def audit_seal(*, max_checkpoints: int = 1000) -> list[Checkpoint]:
    """Seal every committed, unsealed event into checkpoints; return the new ones (maybe none).

    Idempotent and safe to run on several workers at once. The horizon is read in a transaction of its
    own (holding the writers' lock only for an instant), then sealing runs in another.
    """
    signing_key()  # no key, no sealing (production without a configured key): before any work
    horizon = safe_horizon()
    if horizon is None:
        return []
    return _seal_through(horizon=horizon, max_checkpoints=max_checkpoints)


@service(audited=False)  # the checkpoint is the evidence; an event about it would never stop sealing
def _seal_through(*, horizon: int, max_checkpoints: int) -> list[Checkpoint]:
    made: list[Checkpoint] = []
    lock_sealer()
    last = Checkpoint.objects.order_by("-number").first()
    next_seq = last.last_seq + 1 if last else 1
    previous_hash = last.hash if last else GENESIS_HASH
    number = last.number + 1 if last else 1
    while next_seq <= horizon and len(made) < max_checkpoints:
        end = min(horizon, next_seq + MAX_EVENTS_PER_CHECKPOINT - 1)
        hashes: list[str] = []
        present: list[int] = []
        for row in _events(next_seq, end):
            recomputed = _row_hash(row)
            if recomputed != row[-1]:
                raise AuditTampered(f"event {row[0]}: stored hash does not match its contents; sealing stopped")
            hashes.append(row[-1])
            present.append(row[0])
        if not hashes:
            # Only rolled-back numbers so far: wait until a committed event follows them.
            break
        end = present[-1]
        gaps = _gaps(next_seq, end, present)
        fields = {
            "number": number,
            "first_seq": next_seq,
            "last_seq": end,
            "count": len(hashes),
            "gaps": json.dumps([str(g) for g in gaps], separators=(",", ":")),
            "root": merkle_root(hashes),
            "previous_hash": previous_hash,
            "sealed_at": timezone.now(),
        }
        digest = checkpoint_hash(_checkpoint_fields(fields))
        key, signature = sign(digest)
        leaves = b"".join(bytes.fromhex(h) for h in hashes)
        checkpoint = Checkpoint.objects.create(hash=digest, key_id=key, signature=signature, leaves=leaves, **fields)
        made.append(checkpoint)
        crash_point("audit.sealed")
        previous_hash, number, next_seq = digest, number + 1, end + 1
    if made:
        logger.info(
            "sealed audit events",
            extra={"checkpoints": len(made), "through_seq": made[-1].last_seq, "events": sum(c.count for c in made)},
        )
    return made


def _gaps(first: int, last: int, present: list[int]) -> list[int]:
    gaps: list[int] = []
    expected = first
    for seq in present:
        gaps.extend(range(expected, seq))
        expected = seq + 1
    gaps.extend(range(expected, last + 1))
    return gaps


# --- verification ------------------------------------------------------------------------------------
@dataclass
class VerifyResult:
    ok: bool = True
    events: int = 0
    checkpoints: int = 0
    unsealed: int = 0
    resumed_after: int | None = None  # with ``since_last``: the checkpoint verified before, resumed after
    failure: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, kind: str, ident: int, reason: str) -> None:  # reason: a ProofProblem, English as a str
        problem = {"kind": kind, "seq" if kind == "event" else "checkpoint": ident, "reason": reason}
        self.problems.append(problem)
        if self.ok:
            self.ok = False
            self.failure = problem


@dataclass(frozen=True, slots=True)
class _Span:
    """One checkpoint's share of verification: its events, checked apart from the chain (in a worker).

    ``after``: the events with ``after < seq <= last_seq`` are this checkpoint's (``after`` is the highest
    ``last_seq`` of the checkpoints before it, as a single pass over the events would have them).
    ``number`` None: the events after the last checkpoint, not yet sealed.
    """

    number: int | None
    after: int
    first_seq: int = 0
    last_seq: int = 2**62
    count: int = 0
    root: str = ""
    gaps: str = "[]"
    stop_at_first: bool = False


# What the trail's verification finds beyond a proof's steps, by a stable code (``verify_audit`` shows the text in
# the reader's language; the result keeps the English, which the problem is as a string).
TRAIL_MESSAGES = {
    "unsealed_hash": gettext_noop("hash does not match its contents (not yet sealed)"),
    "leaves_edited": gettext_noop("the event hashes it sealed were edited (they no longer give its root)"),
    "missing": gettext_noop("missing: checkpoint %(number)s sealed it"),
    "gap_present": gettext_noop("present, but checkpoint %(number)s sealed its number as a gap"),
    "event_hash": gettext_noop("hash does not match its contents"),
    "edited_after_sealing": gettext_noop(
        "edited after sealing: its contents and hash are not what checkpoint %(number)s sealed"
    ),
    "count": gettext_noop("holds %(events)s events, sealed %(count)s"),
    "merkle_root": gettext_noop("Merkle root does not match its events"),
    "numbers_skip": gettext_noop("checkpoint numbers skip from %(previous)s to %(number)s"),
    "previous_hash": gettext_noop("does not name the previous checkpoint's hash"),
    "first_seq": gettext_noop("starts at event %(first)s, not %(expected)s"),
    "checkpoint_hash": gettext_noop("hash does not match its fields"),
    "sealed_without_key": gettext_noop(
        "events %(first)s..%(last)s are sealed only by checkpoint %(number)s, whose signature does not hold: they "
        "were sealed without the registry's key"
    ),
    "changed_since_run": gettext_noop("changed or gone since a run verified it at %(time)s: run a full verification"),
}


class TrailProblem(ProofProblem):
    messages = TRAIL_MESSAGES


Problem = tuple[str, int, str]


def _verify_span(span: _Span) -> tuple[int, list[Problem]]:
    """Verify one checkpoint's events (or the unsealed tail): returns (events read, problems in order)."""
    problems: list[Problem] = []
    if span.number is None:
        events = 0
        for row in _events(span.after + 1, span.last_seq):
            if _row_hash(row) != row[-1]:
                problems.append(("event", row[0], TrailProblem("unsealed_hash")))
                if span.stop_at_first:
                    break  # the events counted are those before it, as one pass that stops there counts
            events += 1
        return events, problems
    c, number = span, span.number
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT leaves FROM {Checkpoint._meta.db_table} WHERE number = %s", [c.number])
        found = cursor.fetchone()
    # The event hashes as they were sealed: an event edited and rehashed since differs from its own.
    sealed = bytes(found[0]) if found and found[0] is not None else None
    if sealed is not None and (
        len(sealed) != 32 * c.count
        or merkle_root_of_digests([sealed[i : i + 32] for i in range(0, len(sealed), 32)]) != c.root
    ):
        problems.append(("checkpoint", number, TrailProblem("leaves_edited")))
        sealed = None
    gaps = {int(g) for g in json.loads(c.gaps)}
    digests: list[bytes] = []
    # Whether every recomputed hash so far is the one the checkpoint sealed at its place: then the events
    # give the sealed leaves, whose root was checked above, and the tree need not be built a second time.
    as_sealed = sealed is not None
    expected = c.first_seq
    for row in _events(c.after + 1, c.last_seq):
        seq = row[0]
        if seq != expected:
            for missing in range(expected, seq):
                if missing not in gaps:
                    problems.append(("event", missing, TrailProblem("missing", number=c.number)))
        if seq in gaps:
            problems.append(("event", seq, TrailProblem("gap_present", number=c.number)))
        # The row's columns are event_digest's parameters in order, the time already text (_events).
        digest = event_digest(*row[:9]) if row[1].__class__ is str else _row_digest(row)
        position = 32 * len(digests)
        if digest.hex() != row[-1]:
            problems.append(("event", seq, TrailProblem("event_hash")))
            as_sealed = as_sealed and sealed is not None and sealed[position : position + 32] == digest
        elif sealed is not None and sealed[position : position + 32] != digest:
            problems.append(("event", seq, TrailProblem("edited_after_sealing", number=c.number)))
            as_sealed = False
        digests.append(digest)
        expected = seq + 1
    for missing in range(expected, c.last_seq + 1):
        if missing not in gaps:
            problems.append(("event", missing, TrailProblem("missing", number=c.number)))
    if len(digests) != c.count:
        problems.append(("checkpoint", number, TrailProblem("count", events=len(digests), count=c.count)))
    elif digests and not as_sealed and merkle_root_of_digests(digests) != c.root:
        problems.append(("checkpoint", number, TrailProblem("merkle_root")))
    return len(digests), problems


def _worker_start() -> None:
    # A forked worker opens its own database connection (the parent closed its own before forking).
    connections.close_all()


def _run_spans(spans: list[_Span], workers: int) -> tuple[Iterator[tuple[int, list[Problem]]], Any]:
    """The spans' results in order: in worker processes when there are several spans and this runs outside
    a transaction (a worker's connection could not see uncommitted rows), else here."""
    if workers <= 1 or len(spans) <= 1 or connection.in_atomic_block:
        return map(_verify_span, spans), None
    connections.close_all()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(spans)), mp_context=mp.get_context("fork"), initializer=_worker_start
    )
    return pool.map(_verify_span, spans), pool


def default_workers() -> int:
    return int(settings.GREENLEDGER.get("AUDIT_VERIFY_WORKERS") or os.cpu_count() or 1)


def audit_verify(
    progress: Callable[[int], None] | None = None,
    stop_at_first: bool = True,
    kept: list[dict[str, Any]] | None = None,
    *,
    since_last: bool = False,
    workers: int | None = None,
    record: bool = False,
) -> VerifyResult:
    """Recompute every event hash, every checkpoint, its signature and the chain; name the first mismatch.

    ``kept``: checkpoint documents from the feed, kept outside (``GET /api/v1/audit/checkpoints/feed``):
    each must still be in the trail with the same hash.

    The chain (numbers, previous hashes, ranges, checkpoint hashes, signatures) is checked here, in order;
    each checkpoint's events (hashes, gaps, the sealed leaves, the Merkle root) are checked in ``workers``
    processes at once (default: one per core), one checkpoint per task, and their findings are reported
    in checkpoint order, as one pass would. ``since_last``: resume after the checkpoint the last recorded
    run verified, once it is shown to have the hash recorded then (else that is the mismatch).
    ``record``: an intact run records how far it verified (``AuditVerification``).
    """
    result = VerifyResult()
    previous_hash = GENESIS_HASH
    expected_first = 1
    after = 0
    start = 0
    checkpoints = list(Checkpoint.objects.order_by("number").defer("leaves"))
    keys = trusted_public_keys()
    unsigned_through = settings.GREENLEDGER.get("AUDIT_UNSIGNED_THROUGH", 0)
    if kept is not None:
        current = {c.number: checkpoint_document(c) for c in checkpoints}
        for number, problem in compare_with_kept(kept, current):
            result.fail("checkpoint", number, problem)
    if since_last:
        last = AuditVerification.objects.order_by("-id").first()
        if last is not None:
            position = next((i for i, c in enumerate(checkpoints) if c.number == last.through_number), None)
            if position is None or checkpoints[position].hash != last.through_hash:
                result.fail(
                    "checkpoint",
                    last.through_number,
                    TrailProblem("changed_since_run", time=format_time(last.verified_at)),
                )
                return result
            start = position + 1
            resumed = checkpoints[position]
            result.resumed_after = resumed.number
            previous_hash, expected_first = resumed.hash, resumed.last_seq + 1
            after = max(c.last_seq for c in checkpoints[:start])
    spans: list[_Span] = []
    chain: list[list[Problem]] = []
    for index, c in enumerate(checkpoints[start:], start=start + 1):
        problems: list[Problem] = []
        if c.number != index:
            problems.append(("checkpoint", c.number, TrailProblem("numbers_skip", previous=index - 1, number=c.number)))
        if c.previous_hash != previous_hash:
            problems.append(("checkpoint", c.number, TrailProblem("previous_hash")))
        if c.first_seq != expected_first:
            problems.append(
                ("checkpoint", c.number, TrailProblem("first_seq", first=c.first_seq, expected=expected_first))
            )
        if checkpoint_hash(_checkpoint_fields(c)) != c.hash:
            problems.append(("checkpoint", c.number, TrailProblem("checkpoint_hash")))
        unsigned = c.number > unsigned_through and signature_problem(checkpoint_document(c), keys)
        if unsigned:
            problems.append(("checkpoint", c.number, unsigned))
            sealed_without_key = TrailProblem("sealed_without_key", first=c.first_seq, last=c.last_seq, number=c.number)
            problems.append(("event", c.first_seq, sealed_without_key))
        chain.append(problems)
        spans.append(_Span(c.number, after, c.first_seq, c.last_seq, c.count, c.root, c.gaps))
        after = max(after, c.last_seq)
        previous_hash = c.hash
        expected_first = c.last_seq + 1
    spans.append(_Span(None, after, stop_at_first=stop_at_first))
    outcomes, pool = _run_spans(spans, workers or default_workers())
    try:
        for problems in chain:
            events, found = next(outcomes)
            for kind, ident, reason in problems + found:
                result.fail(kind, ident, reason)
            result.checkpoints += 1
            result.events += events
            if progress:
                progress(result.events)
            if stop_at_first and not result.ok:
                return result
        events, found = next(outcomes)
        for kind, ident, reason in found:
            result.fail(kind, ident, reason)
        result.events += events
        if stop_at_first and found:
            return result
        result.unsealed = events
        if progress:
            progress(result.events)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if record and result.ok and checkpoints:
        _verification_record(result=result, through=checkpoints[-1], full=start == 0)
    return result


@service(audited=False)  # a record of reading the trail; an event about it would be a new event to verify
def _verification_record(*, result: VerifyResult, through: Checkpoint, full: bool) -> AuditVerification:
    return AuditVerification.objects.create(
        through_number=through.number,
        through_hash=through.hash,
        events=result.events,
        full=full,
        verified_at=timezone.now(),
    )
