"""Group commit for single transfers: the transfers a process's threads make at the same time share one commit.

Each transfer of the lowest serials is one call of ``greenledger_transfer`` (``exchange.services.transfers``).
Made alone, outside any transaction, that call is its own transaction and waits for its own WAL flush. With many
clients at once (gunicorn's threads, a bench's), most of a transfer's time is that wait. Here the transfers
made at the same moment by the threads of one process are written together, several per transaction:

- A caller hands its transfer to the process's ``TransferGroup`` (``run``) and waits. The first caller that finds
  nobody leading leads: it takes every transfer queued at that moment (its own first, at most ``LIMIT``), writes
  them in one transaction on its own connection, commits, then hands the lead to the first caller queued
  meanwhile and wakes the others with their answers. While a group is written the next one queues up, so
  groups grow with the load by themselves; there is no window to wait out.
- A caller that finds nothing else queued writes its transfer alone, as a statement of its own, exactly as
  without group commit: a lone transfer is not made slower.
- In a group, each transfer is ``greenledger_transfer_try`` (``exchange/sql``): ``greenledger_transfer`` in a
  subtransaction of its own. A transfer refused for its own reasons (not enough units, the rulebook) rolls
  back only what it wrote, its Idempotency-Key's row and lock included, and answers its refusal; the others
  go on. Any other error in a member (a trigger's refusal, a deadlock) is answered too, and that caller runs
  its transfer again alone, which raises the error as it always did.
- The lock order (``exchange.locks``) holds for the group as for one transfer: before the first member runs,
  the group locks every member's existing balance rows in key order (step 5), then their participants' event
  counters in id order (step 8); each member then takes rows its group already holds, and two groups never
  wait for each other half way. What a member may still wait for (a destination's balance row created by
  another transaction) ends, at worst, in a deadlock error inside that member, answered as above.
- Idempotency is the one mechanism (``exchange.services.idempotency``): each member claims its key in its own
  statement as a transfer alone does. A twin of a key in the same group finds the key's lock its own
  (advisory locks are the session's) and the first member's row: it answers ``claimed`` and replays that
  answer once the group has committed, as a twin polling for the lock would; if the first was refused, its row
  is gone and the twin runs afresh.

Nothing is acknowledged before the commit that holds it, and a member's answer is only what that commit wrote.
A group that fails before its commit was rolled back whole: every member runs its transfer again alone. A
commit whose outcome is unknown (the connection lost while committing) is reported to every member as the
error it was, as a transfer alone reports it; if the process dies instead, its callers hear nothing. Either
way a retry with the same Idempotency-Key finds the transfer committed and replays it, or makes it once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from exchange.faults import crash_point
from exchange.locks import lock_event_counters, lock_existing_balances

#: The most transfers one transaction holds (one writer committing 200 a transaction halved PostgreSQL's CPU
#: per transfer against one a commit, and a longer group only makes its first members wait longer).
LIMIT = 200

Row = tuple[Any, ...]
# A member's statement: greenledger_transfer's parameters, a refusal answered rather than raised.
STATEMENT = f"SELECT * FROM greenledger_transfer_try({', '.join(['%s'] * 28)})"


def enabled() -> bool:
    return bool(settings.GREENLEDGER.get("TRANSFER_GROUP_COMMIT", True))


@dataclass(eq=False)
class Member:
    """One caller's transfer: the statement's parameters, the balance rows (account, asset) and participants it
    touches, and, once woken, its answer."""

    params: Sequence[Any]
    balances: tuple[tuple[int, int], ...]
    participants: tuple[int, ...]
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next group
    row: Row | None = None  # the member's row of the group's statement; None: run it alone
    failure: BaseException | None = None  # the group's commit, whose outcome is unknown, failed so


class TransferGroup:
    """The leader/follower group commit of one process (``transfer_group()``)."""

    def __init__(self, statement: str, *, limit: int = LIMIT) -> None:
        self.statement = statement
        self.limit = limit
        self._lock = threading.Lock()
        self._queue: list[Member] = []
        self._leading = False
        # What was written in groups of two or more (each in one transaction): read by the tests and the bench.
        self.groups = 0
        self.grouped = 0

    def leading(self) -> bool:
        """Whether a group is being written (a transfer alone included)."""
        with self._lock:
            return self._leading

    def queued(self) -> int:
        """How many transfers wait for the next group."""
        with self._lock:
            return len(self._queue)

    def run(self, member: Member, alone: Callable[[], Row]) -> Row | None:
        """The member's row once the transaction that holds it has committed; ``alone()``'s row when there was
        nothing to write it with; None when the group could not write it (run it alone)."""
        with self._lock:
            self._queue.append(member)
            lead = not self._leading
            self._leading = True
        if not lead:
            member.woken.wait()
            if not member.lead:
                return self._answer(member)
        with self._lock:
            group = self._queue[: self.limit]
            del self._queue[: len(group)]
        assert group[0] is member  # the leader is the first queued: the hand-on goes to the head of the queue
        if len(group) == 1:
            try:
                return alone()
            finally:
                self._hand_on()
        handed = False

        def hand_on() -> None:
            nonlocal handed
            handed = True
            self._hand_on()

        try:
            self._write(group, hand_on)
        finally:
            if not handed:
                self._hand_on()
            for other in group[1:]:
                other.woken.set()
        return self._answer(member)

    @staticmethod
    def _answer(member: Member) -> Row | None:
        if member.failure is not None:
            raise member.failure
        return member.row

    def _hand_on(self) -> None:
        """The next group's lead to the first caller queued meanwhile, or nobody leads."""
        with self._lock:
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].woken.set()
            else:
                self._leading = False

    def _write(self, group: list[Member], written: Callable[[], None]) -> None:
        """Every member in one transaction; each member's row, or None (the group was rolled back before its
        commit: run it alone), or the failure of a commit whose outcome is unknown. ``written()`` is called once
        the members' statements have run, before the commit: the next group is written while this one commits."""
        rows: list[Row] = []
        committing = False
        try:
            with transaction.atomic():
                lock_existing_balances(key for m in group for key in m.balances)
                lock_event_counters(p for m in group for p in m.participants)
                rows = _each(self.statement, [m.params for m in group])
                crash_point("transfer_group.written")
                written()
                committing = True
        except DatabaseError as exc:
            if committing and getattr(exc.__cause__, "sqlstate", None) is None:
                # No answer from the server to the COMMIT: it may have committed. Say so to every member.
                for m in group:
                    m.failure = exc
            return  # rolled back whole (an error before the commit, or the server refused the commit)
        for m, row in zip(group, rows, strict=True):
            m.row = row
        with self._lock:
            self.groups += 1
            self.grouped += len(group)


def _each(statement: str, params: Iterable[Sequence[Any]]) -> list[Row]:
    """One row of ``statement`` per set of parameters, sent in one pipeline (one round trip for the group)."""
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor
        raw.executemany(statement, list(params), returning=True)
        rows = [raw.fetchone()]
        while raw.nextset():
            rows.append(raw.fetchone())
    return rows


_group: TransferGroup | None = None
_made = threading.Lock()


def transfer_group() -> TransferGroup:
    """This process's group."""
    global _group
    if _group is None:
        with _made:
            if _group is None:
                _group = TransferGroup(STATEMENT)
    return _group


def _forget_group() -> None:
    """A forked child starts with a group of its own (its parent's threads are not its own)."""
    global _group, _made
    _group = None
    _made = threading.Lock()


os.register_at_fork(after_in_child=_forget_group)
