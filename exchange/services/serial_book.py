"""The serial book: how a posting moves serial blocks, set-wise, whatever the number of moves.

A move takes units out of blocks (the lowest serials of an account, a hold's blocks, or a named range, or
new units issued) and gives them to a destination in a state (available, held by a hold, retired, ...).
The lowest serials of an account that no move of the posting gives units to are taken in the database by
``greenledger_blocks_take`` (``exchange/sql``), the one definition of taking lowest serials first, which
the single transfer's function calls too. For the other moves (a hold's blocks, named ranges, and units
passed along within one posting) the book loads the blocks they take and applies the moves in memory.
Both are sent as at most four queries, pipelined behind the balance locks (which guard an account's
blocks); then the book deletes the blocks it cut and puts every new piece through
``greenledger_blocks_put``, which merges it with its neighbours: the block writer the single transfer's
function uses too.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from core.errors import translatable as _
from exchange.bulk import delete_ids, pg_array
from exchange.errors import InsufficientAvailable
from exchange.models import BlockState, SerialBlock


class LedgerCorrupted(RuntimeError):
    """Balances and serial blocks disagree: a bug or tampering. ``manage.py reconcile`` names it."""


class SerialsNotAvailable(InsufficientAvailable):
    code = "serials_not_available"
    default_message = _("Those serial numbers are not available in the account.")


@dataclass(slots=True)
class BlockMove:
    asset_id: int
    account_id: int
    quantity: int
    take_hold_id: int | None
    take_range: tuple[int, int] | None
    new_units: bool
    dest_account_id: int
    dest_state: str
    dest_hold_id: int | None


@dataclass(slots=True)
class _Block:
    first: int
    last: int
    account_id: int
    state: str
    hold_id: int | None
    id: int | None = None

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(slots=True)
class SerialBook:
    """An in-memory view of the blocks one posting touches, written back in two statements."""

    loaded: dict[int, _Block] = field(default_factory=dict)
    asset_of: dict[int, int] = field(default_factory=dict)
    groups: dict[tuple[Any, ...], list[_Block]] = field(default_factory=lambda: defaultdict(list))
    gone: set[int] = field(default_factory=set)
    # New blocks by identity, in the order made: a piece cut again later in the posting is dropped in O(1).
    created: dict[int, tuple[int, _Block]] = field(default_factory=dict)

    pending: list[Any] = field(default_factory=list)
    # (account, asset) whose lowest serials greenledger_blocks_take takes, and the ranges it took, in order.
    direct: set[tuple[int, int]] = field(default_factory=set)
    taken: dict[tuple[int, int], list[_Block]] = field(default_factory=lambda: defaultdict(list))

    def move(self, moves: Sequence[BlockMove | None]) -> list[list[tuple[int, int]]]:
        """Apply the moves; return, per move, the ranges it moved (empty for ``None``).

        The cut blocks are deleted, then every new piece is put with ``greenledger_blocks_put``, which
        merges it with its neighbours (two statements; in a pipeline, no round trip of their own).
        """
        real = [m for m in moves if m is not None]
        if not real:
            return [[] for _ in moves]
        if not self.pending:
            self.send(real)
        self._receive()
        result: list[list[tuple[int, int]]] = [[] for _ in moves]
        # Legs may pass units along within one posting (A to B, then B to C) in any order: a move whose
        # units have not arrived yet waits until the moves that deliver them are done.
        pending = [(index, move) for index, move in enumerate(moves) if move is not None]
        while pending:
            waiting = []
            for index, move in pending:
                if self._ready(move):
                    result[index] = self._apply(move)
                else:
                    waiting.append((index, move))
            if len(waiting) == len(pending):
                self._apply(waiting[0][1])  # nothing can deliver what it needs: raises the reason
            pending = waiting
        self._write()
        return result

    def _ready(self, m: BlockMove) -> bool:
        """Whether the blocks this move takes from hold enough now."""
        if m.new_units or self._is_direct(m):
            return True
        if m.take_range is not None:
            first, last = m.take_range
            blocks = self.groups[("avail", m.account_id, m.asset_id)]
            covered = sum(
                min(b.last, last) - max(b.first, first) + 1 for b in blocks if b.last >= first and b.first <= last
            )
            return covered == last - first + 1
        group = ("hold", m.take_hold_id) if m.take_hold_id is not None else ("avail", m.account_id, m.asset_id)
        return sum(b.size for b in self.groups[group]) >= m.quantity

    def _is_direct(self, m: BlockMove) -> bool:
        return m.take_hold_id is None and m.take_range is None and (m.account_id, m.asset_id) in self.direct

    # loading: four queries at most, whatever the number of moves
    def send(self, moves: Sequence[BlockMove | None]) -> None:
        """Send the queries that take or load the blocks the moves take; ``move`` reads their answers.

        Sent right after the balance locks and before their answer (pipeline mode), they cost no round
        trip of their own. They must run after the locks: the balance lock guards an account's blocks.
        The lowest serials of an account no move gives units to are taken at once (deleted or shrunk) by
        ``greenledger_blocks_take``; a refusal found after (the balance check) ends the transaction.
        """
        real = [m for m in moves if m is not None]
        fed = {(m.dest_account_id, m.asset_id) for m in real}
        named_keys = {(m.account_id, m.asset_id) for m in real if m.take_range is not None and not m.new_units}
        direct_need: dict[tuple[int, int], int] = defaultdict(int)
        for m in real:
            key = (m.account_id, m.asset_id)
            plain = not m.new_units and m.take_hold_id is None and m.take_range is None
            if plain and key not in fed and key not in named_keys:
                direct_need[key] += m.quantity
        self.direct = set(direct_need)
        if direct_need:
            keys = sorted(direct_need)
            cursor = connection.cursor()
            cursor.execute(
                "SELECT account_id, asset_id, first, last "
                "FROM greenledger_blocks_take(%s::bigint[], %s::bigint[], %s::bigint[])",
                [
                    pg_array([acc for acc, _ in keys], "bigint"),
                    pg_array([asset for _, asset in keys], "bigint"),
                    pg_array([direct_need[key] for key in keys], "bigint"),
                ],
            )
            self.pending.append(("taken", cursor))
        lowest_first: dict[tuple[int, int], int] = defaultdict(int)
        named: list[tuple[int, int, int, int]] = []  # (account, asset, first, last) of exact ranges
        named_units: dict[tuple[int, int], int] = defaultdict(int)
        holds: set[int] = set()
        for m in real:
            if m.new_units:
                continue
            if m.take_hold_id is not None:
                holds.add(m.take_hold_id)
            elif m.take_range is not None:
                named.append((m.account_id, m.asset_id, *m.take_range))
                named_units[(m.account_id, m.asset_id)] += m.quantity
            elif (m.account_id, m.asset_id) not in self.direct:
                lowest_first[(m.account_id, m.asset_id)] += m.quantity
        table = SerialBlock._meta.db_table
        columns = "id, asset_id, first, last, account_id, state, hold_id"
        if lowest_first:
            # Named ranges of the same account may take some of its lowest blocks first: read as many more.
            need = sorted((key, qty + named_units.get(key, 0)) for key, qty in lowest_first.items())
            values = ", ".join(["(%s, %s, %s)"] * len(need))
            cursor = connection.cursor()
            # Only the lowest blocks that together cover each need (read no further), as the database
            # function takes them: greenledger_lowest_blocks (exchange/sql).
            cursor.execute(
                f"SELECT b.id, need.asset_id, b.first, b.last, need.account_id, 'available', NULL::bigint "
                f"FROM (VALUES {values}) AS need(account_id, asset_id, qty) "
                "CROSS JOIN LATERAL greenledger_lowest_blocks(need.account_id, need.asset_id, need.qty) AS b",
                [v for (acc, asset), qty in need for v in (acc, asset, qty)],
            )
            self.pending.append(("loaded", cursor))
        if named:
            values = ", ".join(["(%s, %s, %s, %s)"] * len(named))
            cursor = connection.cursor()
            # The blocks that may overlap each range: the last one starting below it, and those starting in it.
            cursor.execute(
                f"SELECT b.{columns.replace(', ', ', b.')} FROM (VALUES {values}) AS r(account_id, asset_id, f, l) "
                "CROSS JOIN LATERAL ("
                f"  (SELECT {columns} FROM {table} WHERE account_id = r.account_id AND asset_id = r.asset_id "
                "    AND state = 'available' AND first < r.f ORDER BY first DESC LIMIT 1) "
                f"  UNION ALL (SELECT {columns} FROM {table} WHERE account_id = r.account_id "
                "    AND asset_id = r.asset_id AND state = 'available' AND first BETWEEN r.f AND r.l)"
                ") AS b",
                [v for row in sorted(named) for v in row],
            )
            self.pending.append(("loaded", cursor))
        if holds:
            placeholders = ", ".join(["%s"] * len(holds))
            cursor = connection.cursor()
            cursor.execute(f"SELECT {columns} FROM {table} WHERE hold_id IN ({placeholders})", sorted(holds))
            self.pending.append(("loaded", cursor))
        if not self.pending:
            self.pending.append(None)

    def _receive(self) -> None:
        for item in self.pending:
            if item is None:
                continue
            kind, cursor = item
            try:
                if kind == "taken":
                    for account_id, asset_id, first, last in cursor.fetchall():
                        self.taken[(account_id, asset_id)].append(
                            _Block(first, last, account_id, BlockState.AVAILABLE, None)
                        )
                else:
                    self._remember(cursor.fetchall())
            finally:
                cursor.close()
        self.pending = [None]
        for row_id, block in self.loaded.items():
            self.groups[self._group_of(block, self.asset_of[row_id])].append(block)
        for blocks in self.groups.values():
            blocks.sort(key=lambda b: b.first)

    @staticmethod
    def _group_of(block: _Block, asset_id: int) -> tuple[Any, ...]:
        if block.hold_id is not None:
            return ("hold", block.hold_id)
        return ("avail", block.account_id, asset_id)

    def _remember(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for row_id, asset_id, first, last, account_id, state, hold_id in rows:
            if row_id not in self.loaded:
                self.loaded[row_id] = _Block(first, last, account_id, state, hold_id, row_id)
                self.asset_of[row_id] = asset_id

    # taking units out of loaded blocks
    def _apply(self, m: BlockMove) -> list[tuple[int, int]]:
        if m.new_units:
            assert m.take_range is not None
            taken = [m.take_range]
        elif m.take_range is not None:
            taken = self._take_range(m)
        elif self._is_direct(m):
            # The ranges greenledger_blocks_take took from the account: already gone from the table, so
            # nothing is retired or written back; this move takes its share, in leg order.
            taken = self._take_lowest(self.taken[(m.account_id, m.asset_id)], m, written=False)
        else:
            group = ("hold", m.take_hold_id) if m.take_hold_id is not None else ("avail", m.account_id, m.asset_id)
            taken = self._take_lowest(self.groups[group], m)
        for first, last in taken:
            block = _Block(first, last, m.dest_account_id, m.dest_state, m.dest_hold_id)
            self._add(m.asset_id, block)
            if block.state == BlockState.AVAILABLE:
                # A later leg of this posting may move these units on (the balance check allows it).
                bisect.insort(self.groups[("avail", block.account_id, m.asset_id)], block, key=lambda b: b.first)
        return taken

    def _take_lowest(self, blocks: list[_Block], m: BlockMove, *, written: bool = True) -> list[tuple[int, int]]:
        """Take ``m.quantity`` from the lowest of ``blocks`` (in serial order): whole blocks go, the last shrinks.

        ``written``: the blocks are rows of the table (or pieces to write), so what is taken is deleted and
        the rest of a cut block written back; False for ranges already taken in the database.
        """
        need = m.quantity
        taken: list[tuple[int, int]] = []
        while need > 0:
            if not blocks:
                raise LedgerCorrupted(
                    f"account {m.account_id} asset {m.asset_id}: balance shows units that no serial block holds"
                )
            block = blocks[0]
            if written:
                self._retire_loaded(block)
            if block.size <= need:
                taken.append((block.first, block.last))
                need -= block.size
                blocks.pop(0)
            else:
                taken.append((block.first, block.first + need - 1))
                rest = _Block(block.first + need, block.last, block.account_id, block.state, block.hold_id)
                blocks[0] = rest
                if written:
                    self._add(m.asset_id, rest)
                need = 0
        return taken

    def _take_range(self, m: BlockMove) -> list[tuple[int, int]]:
        assert m.take_range is not None
        first, last = m.take_range
        blocks = self.groups[("avail", m.account_id, m.asset_id)]
        covering = [b for b in blocks if b.last >= first and b.first <= last]
        covered = sum(min(b.last, last) - max(b.first, first) + 1 for b in covering)
        if covered != last - first + 1:
            raise SerialsNotAvailable(details={"serials": [first, last], "available_in_range": covered})
        for block in covering:
            self._retire_loaded(block)
            blocks.remove(block)
            if block.first < first:
                left = _Block(block.first, first - 1, block.account_id, block.state, block.hold_id)
                blocks.append(left)
                self._add(m.asset_id, left)
            if block.last > last:
                right = _Block(last + 1, block.last, block.account_id, block.state, block.hold_id)
                blocks.append(right)
                self._add(m.asset_id, right)
        blocks.sort(key=lambda b: b.first)
        return [(first, last)]

    def _retire_loaded(self, block: _Block) -> None:
        if block.id is not None:
            self.gone.add(block.id)
        else:
            # A piece created earlier in this posting is being cut again: drop the earlier version.
            self.created.pop(id(block), None)

    def _add(self, asset_id: int, block: _Block) -> None:
        self.created[id(block)] = (asset_id, block)

    # writing back: the one block writer, greenledger_blocks_put (exchange/sql), merges with neighbours
    def _write(self) -> None:
        delete_ids(SerialBlock._meta.db_table, sorted(self.gone))
        pieces = list(self.created.values())
        if not pieces:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT greenledger_blocks_put(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], "
                "%s::text[], %s::bigint[])",
                [
                    pg_array([asset for asset, _ in pieces], "bigint"),
                    pg_array([b.first for _, b in pieces], "bigint"),
                    pg_array([b.last for _, b in pieces], "bigint"),
                    pg_array([b.account_id for _, b in pieces], "bigint"),
                    [b.state for _, b in pieces],
                    pg_array([b.hold_id for _, b in pieces], "bigint"),
                ],
            )
