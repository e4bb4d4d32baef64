"""Owning a book: one engine per book, proved twice.

An engine takes a PostgreSQL session advisory lock per book (``exchange.locks.try_own_book``): a second engine
can't take it while the first's connection lives, and a dead engine's connection lets it go. On taking the lock
it advances the book's ``BookWriter.epoch`` and remembers it; every batch re-reads the row under the book lock
and writes only if the epoch is still its own (a fencing token: an engine whose connection was lost and whose
book was taken over stops instead of writing).

The same row's ``foreign_writes`` counter, read under the book lock at the start of every batch, tells the engine
that its book or the rules it trades under changed outside it: a write to the book (``trading.note_foreign_write``)
or a new rulebook version or listing change (``note_rules_change``). The engine then rebuilds the book and reads
the rules again before deciding the batch, so a rule published is in force from the next batch on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from core import clock
from exchange.locks import lock_book, try_own_book
from exchange.models import BookWriter, Market


class LostBook(RuntimeError):
    """Another engine took the book over: this one must not write to it."""


@dataclass
class Ownership:
    asset_id: int
    epoch: int
    foreign_writes: int


def take(asset_id: int, owner: str) -> Ownership | None:
    """Own the asset's continuous book, or None when another engine does."""
    if not try_own_book(asset_id):
        return None
    with transaction.atomic():
        lock_book(asset_id)
        BookWriter.objects.get_or_create(asset_id=asset_id)
        BookWriter.objects.filter(asset_id=asset_id).update(epoch=F("epoch") + 1, owner=owner, taken_at=clock.now())
        row = BookWriter.objects.get(asset_id=asset_id)
    return Ownership(asset_id, row.epoch, row.foreign_writes)


def check(ownership: Ownership) -> Callable[[], bool]:
    """Under the book lock, in the batch's transaction: whether the book still has this owner and what was written
    to it outside the engine, in two halves. The lock and the read are sent now (in the batch's pipeline they
    wait for nothing); the answer, read when called, raises ``LostBook`` if the book has another owner now and
    is whether something outside the engine wrote to the book (or its rules) since it last looked (then rebuild
    it and read its rules again)."""
    lock_book(ownership.asset_id)
    cursor = connection.cursor()
    cursor.execute(
        f"SELECT foreign_writes FROM {BookWriter._meta.db_table} WHERE asset_id = %s AND epoch = %s",
        [ownership.asset_id, ownership.epoch],
    )

    def answer() -> bool:
        with connection.wrap_database_errors:
            row = cursor.fetchone()
        cursor.close()
        if row is None:
            raise LostBook(ownership.asset_id)
        changed = row[0] != ownership.foreign_writes
        ownership.foreign_writes = row[0]
        return changed

    return answer


def note_rules_change(*, market: Market | None = None, asset_ids: Iterable[int] = ()) -> None:
    """In the transaction that changes them: the rules of the market's books (a rulebook version published) or of
    these instruments (their listing changed) are no longer what an engine keeps. The engine owning such a book
    reads them again before its next batch instead of deciding from its copy (kept at most ``RULES_SECONDS``)."""
    where: dict[str, Any] = {"asset__market": market} if market is not None else {"asset_id__in": list(asset_ids)}
    BookWriter.objects.filter(**where).update(foreign_writes=F("foreign_writes") + 1)
