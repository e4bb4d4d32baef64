"""The one posting service: every movement of units or cash goes through ``ledger_post``.

A movement is a list of ``Leg``s (an asset, a source, a destination, a quantity). Posting them:

1. locks the balance rows of every (account, asset) touched, in key order (``exchange.locks``);
2. checks that no participant balance goes below its held amount (``insufficient_available``) and
   that each consumed hold has enough left;
3. moves serial blocks set-wise: takes the lowest serials first (or a hold's blocks, or an exact range),
   splits blocks where a movement takes part of one, merges adjacent blocks of one holder and state;
4. writes the balances, one posting per side with the balance after it, and the serial movements.

Every leg is balanced by construction (the source loses what the destination gains); on PostgreSQL a
deferred trigger checks it again at commit. Holds are placed and released here too, because they
change balances and blocks. Callers are services: they open the journal entry with ``journal_open``
(which makes them idempotent), post, and record their audit event, all in one database transaction.
The number of statements does not grow with the number of legs.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from accounts.actors import Actor
from core import clock
from core.errors import InvalidQuantity
from core.errors import translatable as _
from core.money import amount
from exchange.audit_proof import canonical_json, entry_digest, sha256_hex
from exchange.bulk import bulk_insert, bulk_update, delete_ids, write_all
from exchange.errors import IdempotencyConflict, InsufficientAvailable, InvalidState, SameAccount
from exchange.locks import LockedBalance, LockedHold, lock_balances, lock_holds
from exchange.models import (
    SINK_STATE,
    Account,
    AccountKind,
    Asset,
    Balance,
    BlockState,
    Hold,
    HoldStatus,
    Posting,
    SerialBlock,
    SerialMovement,
    Transaction,
)
from exchange.services.audit import mark_replayed
from exchange.services.idempotency import idempotency_scope

POSTING_COLUMNS = ("transaction_id", "account_id", "asset_id", "quantity", "balance_after")
MOVEMENT_COLUMNS = ("transaction_id", "asset_id", "first", "last", "source_id", "destination_id", "state")
BLOCK_COLUMNS = ("asset_id", "first", "last", "account_id", "state", "hold_id")
_TYPES = {"state": "text"}
BALANCE_WRITE = [("total", "bigint"), ("held", "bigint")]
HOLD_WRITE = [("remaining", "bigint"), ("status", "text"), ("ended_at", "timestamptz")]


def _typed(columns: Sequence[str]) -> list[tuple[str, str]]:
    return [(c, _TYPES.get(c, "bigint")) for c in columns]


class LedgerCorrupted(RuntimeError):
    """Balances and serial blocks disagree: a bug or tampering. ``manage.py reconcile`` names it."""


class SerialsNotAvailable(InsufficientAvailable):
    code = "serials_not_available"
    default_message = _("Those serial numbers are not available in the account.")


# --- the journal entry -------------------------------------------------------------------------------
def request_hash(kind: str, request: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({"kind": kind, "request": request}))


def journal_open(
    *,
    kind: str,
    actor: Actor,
    idempotency_key: str | None,
    request: dict[str, Any],
    memo: str = "",
    metadata: dict[str, Any] | None = None,
    at: datetime | None = None,
    scope: str | None = None,
) -> tuple[Transaction, bool]:
    """Open the journal entry of an operation, or find the one an earlier call with this key opened.

    Returns ``(transaction, replayed)``. With a key already used for the same request, the earlier
    transaction is returned and ``replayed`` is True: the caller returns it and changes nothing. With a
    key used for a different request, ``IdempotencyConflict``. Two callers racing with one key: the
    second waits on the unique index until the first commits, then replays it. Keys are scoped to the
    actor's participant unless ``scope`` names a wider one (an issuance reference is registry-wide).
    """
    if scope is None:
        scope = idempotency_scope(actor)
    digest = request_hash(kind, request)
    now = at or clock.now()
    row: list[Any] = [
        kind,
        actor.user_id,
        actor.participant_id,
        actor.label,
        scope,
        idempotency_key,
        digest,
        memo[:500],
        json.dumps(metadata or {}, sort_keys=True, default=str),
        now,
    ]
    with connection.cursor() as cursor:
        # The one INSERT of a journal entry (exchange/sql/greenledger_journal_open.sql): NULL if the key is taken.
        cursor.execute("SELECT greenledger_journal_open(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)", row)
        inserted = cursor.fetchone()
    if inserted is None or inserted[0] is None:
        return journal_replay(scope=scope, idempotency_key=idempotency_key, digest=digest), True
    txn = Transaction(
        id=inserted[0],
        kind=kind,
        actor_user_id=actor.user_id,
        actor_participant_id=actor.participant_id,
        actor_label=actor.label,
        idempotency_scope=scope,
        idempotency_key=idempotency_key,
        request_hash=digest,
        memo=memo[:500],
        metadata=json.loads(row[8]),
        created_at=now,
    )
    txn._state.adding = False
    return txn, False


def journal_replay(*, scope: str, idempotency_key: str | None, digest: str) -> Transaction:
    """The entry an earlier request with this key opened; ``IdempotencyConflict`` if it asked for another."""
    existing = Transaction.objects.get(idempotency_scope=scope, idempotency_key=idempotency_key)
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            details={"idempotency_key": idempotency_key, "transaction": existing.pk, "kind": existing.kind}
        )
    mark_replayed()
    return existing


# --- legs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Leg:
    """``quantity`` of ``asset`` from ``source`` to ``destination``.

    ``hold``: move units that hold reserved (and consume it by that much) instead of available ones.
    ``serials``: the exact inclusive range to move; required when the source is the issuance account
    (the new units), optional otherwise (e.g. retiring named serials).
    """

    asset: Asset
    source: Account
    destination: Account
    quantity: int
    hold: Hold | LockedHold | None = None
    serials: tuple[int, int] | None = None


@dataclass(slots=True)
class Posted:
    """What ``ledger_post`` did: how many postings, per leg the serial ranges it moved, the balances after."""

    postings: int
    ranges: list[list[tuple[int, int]]]
    balances: dict[tuple[int, int], LockedBalance]
    holds: dict[int, LockedHold] = field(default_factory=dict)  # the consumed holds, as they are after
    # The entry's audit event states this (payload ``entry_digest``); ``manage.py reconcile`` recomputes it.
    digest: str = ""


_SINK_STATE = {str(kind): str(state) for kind, state in SINK_STATE.items()}


def _destination_state(account: Account) -> str:
    return _SINK_STATE.get(account.kind, BlockState.AVAILABLE)


def _check_leg(leg: Leg) -> None:
    if not isinstance(leg.quantity, int) or isinstance(leg.quantity, bool) or leg.quantity <= 0:
        raise InvalidQuantity(details={"quantity": str(leg.quantity)})
    if leg.source.pk == leg.destination.pk:
        raise SameAccount(details={"account": leg.source.number})
    if leg.hold is not None and (leg.hold.account_id != leg.source.pk or leg.hold.asset_id != leg.asset.pk):
        raise InvalidState("The hold is not on the source account and asset.", details={"hold": leg.hold.pk})
    issuing = leg.source.kind == AccountKind.ISSUANCE
    if leg.asset.serialised and issuing and leg.serials is None:
        raise ValueError("issuing serialised units needs the new serial range")
    if leg.serials is not None:
        first, last = leg.serials
        if first < 1 or last - first + 1 != leg.quantity:
            raise InvalidQuantity("The serial range does not match the quantity.", details={"serials": [first, last]})
        if not leg.asset.serialised:
            raise InvalidQuantity("Cash has no serial numbers.")


def ledger_post(
    txn: Transaction, legs: Sequence[Leg], *, net: bool = False, ended_hold_status: str = HoldStatus.POSTED
) -> Posted:
    """Post the legs as part of ``txn``; raise a ``LedgerError`` and change nothing if any can't move.

    Each leg writes two postings; with ``net`` each (account, asset) the entry touches gets one posting,
    its net change (none where that nets to zero), as a clearing house books a settlement. Balances,
    holds, serial blocks and movements are the same either way; only the journal's granularity differs.
    A hold a leg uses up ends with ``ended_hold_status`` (``enforced`` when a pledge is enforced).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_post must run inside the service's transaction")
    if not legs:
        raise ValueError("a transaction moves something")
    for leg in legs:
        _check_leg(leg)

    deltas: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    outgoing: dict[tuple[int, int], int] = defaultdict(int)
    hold_use: dict[int, int] = defaultdict(int)
    negative = set()
    for leg in legs:
        src, dst = (leg.source.pk, leg.asset.pk), (leg.destination.pk, leg.asset.pk)
        deltas[src][0] -= leg.quantity
        deltas[dst][0] += leg.quantity
        if leg.hold is not None:
            deltas[src][1] -= leg.quantity
            hold_use[leg.hold.pk] += leg.quantity
        else:
            outgoing[src] += leg.quantity
        if leg.source.kind == AccountKind.ISSUANCE:
            negative.add(leg.source.pk)

    # In a caller's pipeline (``core.db.pipeline``) the reads wait for their answers and the writes at
    # the end go out together with whatever the caller sends next.
    book = _SerialBook()
    block_moves = [
        _BlockMove(
            asset_id=leg.asset.pk,
            account_id=leg.source.pk,
            quantity=leg.quantity,
            take_hold_id=leg.hold.pk if leg.hold else None,
            take_range=leg.serials,
            new_units=leg.source.kind == AccountKind.ISSUANCE,
            dest_account_id=leg.destination.pk,
            dest_state=_destination_state(leg.destination),
            dest_hold_id=None,
        )
        if leg.asset.serialised
        else None
        for leg in legs
    ]
    send = (lambda: book.send(block_moves)) if any(m is not None for m in block_moves) else None
    # The block reads go out behind the lock statement, before its answer: one round trip for both.
    balances = lock_balances(deltas, allow_negative=negative, then=send)
    holds = lock_holds(hold_use)
    for hold_id, used in hold_use.items():
        hold = holds[hold_id]
        if hold.status != HoldStatus.ACTIVE or hold.remaining < used:
            raise InvalidState(
                "The hold has ended or has less left than this movement needs.",
                details={"hold": hold_id, "status": hold.status, "remaining": hold.remaining, "requested": used},
            )
    accounts = {leg.source.pk: leg.source for leg in legs} | {leg.destination.pk: leg.destination for leg in legs}
    assets = {leg.asset.pk: leg.asset for leg in legs}
    _check_balances(balances, deltas, outgoing, accounts, assets)

    ranges = book.move(block_moves, write_inserts=False)

    postings: list[tuple[int, int, int, int, int]] = []
    if net:
        for (account_id, asset_id), (d_total, _) in deltas.items():
            if d_total:
                postings.append(
                    (txn.pk, account_id, asset_id, d_total, balances[(account_id, asset_id)].total + d_total)
                )
    else:
        running = {key: bal.total for key, bal in balances.items()}
        for leg in legs:
            asset_id = leg.asset.pk
            src, dst = (leg.source.pk, asset_id), (leg.destination.pk, asset_id)
            running[src] -= leg.quantity
            postings.append((txn.pk, leg.source.pk, asset_id, -leg.quantity, running[src]))
            running[dst] += leg.quantity
            postings.append((txn.pk, leg.destination.pk, asset_id, leg.quantity, running[dst]))
    movements = [
        (txn.pk, leg.asset.pk, first, last, leg.source.pk, leg.destination.pk, _destination_state(leg.destination))
        for leg, leg_ranges in zip(legs, ranges, strict=True)
        for first, last in leg_ranges
    ]
    # The blocks were deleted already (a new block may take an old one's place); the rest goes out at once.
    write_all(
        updates=[
            (Balance._meta.db_table, BALANCE_WRITE, _balance_rows(balances, deltas)),
            (Hold._meta.db_table, HOLD_WRITE, _hold_rows(holds, hold_use, ended_hold_status)),
        ],
        inserts=[
            (SerialBlock._meta.db_table, _typed(BLOCK_COLUMNS), book.block_rows),
            (Posting._meta.db_table, _typed(POSTING_COLUMNS), postings),
            (SerialMovement._meta.db_table, _typed(MOVEMENT_COLUMNS), movements),
        ],
    )
    digest = entry_digest(txn.kind, txn.created_at, [(p[1], p[2], p[3]) for p in postings])
    return Posted(postings=len(postings), ranges=ranges, balances=balances, holds=holds, digest=digest)


def insufficient_available(account: Account, asset: Asset, available: int, requested: int) -> InsufficientAvailable:
    """The refusal of more than ``account`` has available, with the figures as the API gives amounts: units
    as integers, cash as yuan strings ("47780441.90", never raw fen)."""
    shown, wanted = amount(asset, available), amount(asset, requested)
    return InsufficientAvailable(
        f"Account {account.number} has {shown} {asset.code} available; {wanted} requested.",
        details={"account": account.number, "asset": asset.code, "available": shown, "requested": wanted},
    )


def _check_balances(
    balances: dict[tuple[int, int], LockedBalance],
    deltas: dict[tuple[int, int], list[int]],
    outgoing: dict[tuple[int, int], int],
    accounts: dict[int, Account],
    assets: dict[int, Asset],
) -> None:
    for key, (d_total, d_held) in deltas.items():
        bal = balances[key]
        if bal.allow_negative:
            continue
        total, held = bal.total + d_total, bal.held + d_held
        if held < 0 or held > total:
            raise insufficient_available(accounts[key[0]], assets[key[1]], bal.available, outgoing.get(key, 0))


def _balance_rows(
    balances: dict[tuple[int, int], LockedBalance], deltas: dict[tuple[int, int], list[int]]
) -> list[tuple[int, int, int]]:
    """Apply the deltas to the locked balances; return the rows to write (id, total, held)."""
    rows = []
    for key, (d_total, d_held) in deltas.items():
        bal = balances[key]
        bal.total += d_total
        bal.held += d_held
        if d_total or d_held:
            rows.append((bal.id, bal.total, bal.held))
    return rows


def _write_balances(balances: dict[tuple[int, int], LockedBalance], deltas: dict[tuple[int, int], list[int]]) -> None:
    bulk_update(Balance._meta.db_table, BALANCE_WRITE, _balance_rows(balances, deltas))


def _hold_rows(holds: dict[int, LockedHold], use: dict[int, int], final_status: str) -> list[tuple[Any, ...]]:
    """Consume ``use`` from the holds; return the rows to write (id, remaining, status, ended_at)."""
    now = timezone.now()
    changed = []
    for hold_id, quantity in use.items():
        hold = holds[hold_id]
        hold.remaining -= quantity
        if hold.remaining == 0:
            hold.status = final_status
            hold.ended_at = now
        changed.append((hold.pk, hold.remaining, hold.status, hold.ended_at))
    return changed


def _consume_holds(holds: dict[int, LockedHold], use: dict[int, int], final_status: str) -> None:
    bulk_update(Hold._meta.db_table, HOLD_WRITE, _hold_rows(holds, use, final_status))


# --- holds ---------------------------------------------------------------------------------------------
def hold_place(
    *,
    account: Account,
    asset: Asset,
    quantity: int,
    kind: str,
    reference: str,
    serials: tuple[int, int] | None = None,
) -> Hold:
    """Reserve ``quantity`` of the account's available ``asset`` (for serialised assets, exact blocks)."""
    if not connection.in_atomic_block:
        raise RuntimeError("hold_place must run inside the service's transaction")
    if not isinstance(quantity, int) or quantity <= 0:
        raise InvalidQuantity(details={"quantity": str(quantity)})
    key = (account.pk, asset.pk)
    balance = lock_balances([key])[key]
    if balance.available < quantity:
        raise insufficient_available(account, asset, balance.available, quantity)
    hold = Hold.objects.create(
        account=account,
        asset=asset,
        kind=kind,
        reference=reference,
        quantity=quantity,
        remaining=quantity,
        created_at=timezone.now(),
    )
    if asset.serialised:
        _SerialBook().move(
            [
                _BlockMove(
                    asset_id=asset.pk,
                    account_id=account.pk,
                    quantity=quantity,
                    take_hold_id=None,
                    take_range=serials,
                    new_units=False,
                    dest_account_id=account.pk,
                    dest_state=BlockState.HELD,
                    dest_hold_id=hold.pk,
                )
            ]
        )
    _write_balances({key: balance}, {key: [0, quantity]})
    return hold


def hold_release(hold: Hold, quantity: int | None = None, *, status: str = HoldStatus.RELEASED) -> int:
    """Give back ``quantity`` (default: all that remains) of a hold to available; return how much.

    The hold ends (with ``status``) when nothing remains. Releasing an ended hold releases nothing.
    """
    released = holds_release([(hold, quantity)], status=status)
    refreshed = Hold.objects.only("remaining", "status", "ended_at").get(pk=hold.pk)
    hold.remaining, hold.status, hold.ended_at = refreshed.remaining, refreshed.status, refreshed.ended_at
    return released.get(hold.pk, 0)


def holds_release(
    releases: Sequence[tuple[Hold | LockedHold, int | None]], *, status: str = HoldStatus.RELEASED
) -> dict[int, int]:
    """Release many holds at once (``None``: all that remains of that hold); return hold id -> released.

    Set-wise: the same few statements for one hold or ten thousand. Ended holds release nothing.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("holds_release must run inside the service's transaction")
    if not releases:
        return {}
    keys = {(hold.account_id, hold.asset_id) for hold, _ in releases}
    balances = lock_balances(keys)
    locked = lock_holds(hold.pk for hold, _ in releases)
    amounts: dict[int, int] = {}
    for hold, quantity in releases:
        current = locked[hold.pk]
        if current.status != HoldStatus.ACTIVE:
            continue
        amount = current.remaining if quantity is None else quantity
        if amount == 0:
            continue
        if amount < 0 or amount + amounts.get(hold.pk, 0) > current.remaining:
            raise InvalidState(
                "Can't release more than the hold has left.",
                details={"hold": hold.pk, "remaining": current.remaining, "requested": amount},
            )
        amounts[hold.pk] = amounts.get(hold.pk, 0) + amount
    if not amounts:
        return {}
    serialised = set(
        Asset.objects.filter(pk__in={locked[h].asset_id for h in amounts}, serialised=True).values_list("pk", flat=True)
    )
    moves = [
        _BlockMove(
            asset_id=locked[h].asset_id,
            account_id=locked[h].account_id,
            quantity=amount,
            take_hold_id=h,
            take_range=None,
            new_units=False,
            dest_account_id=locked[h].account_id,
            dest_state=BlockState.AVAILABLE,
            dest_hold_id=None,
        )
        for h, amount in amounts.items()
        if locked[h].asset_id in serialised
    ]
    if moves:
        _SerialBook().move(moves)
    deltas: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for h, amount in amounts.items():
        deltas[(locked[h].account_id, locked[h].asset_id)][1] -= amount
    _write_balances(balances, deltas)
    _consume_holds(locked, amounts, status)
    return amounts


def holds_consolidate(holds: Sequence[Hold], *, kind: str, reference: str, status: str = HoldStatus.ENFORCED) -> Hold:
    """Hand what several active holds of one account and asset reserve to one new hold, block for block.

    Nothing becomes available in between: the same serial blocks stay held, now by the new hold, the
    balance's ``held`` does not change, and the old holds end with ``status``. (A pledge enforced by
    sale hands its units to the sale order this way.)
    """
    if not connection.in_atomic_block:
        raise RuntimeError("holds_consolidate must run inside the service's transaction")
    if not holds:
        raise ValueError("nothing to consolidate")
    keys = {(hold.account_id, hold.asset_id) for hold in holds}
    if len(keys) != 1:
        raise ValueError("holds of one account and asset only")
    ((account_id, asset_id),) = keys
    lock_balances(keys)  # guards the account's blocks of the asset
    locked = lock_holds(hold.pk for hold in holds)
    ended = [h for h in locked.values() if h.status != HoldStatus.ACTIVE]
    if ended:
        raise InvalidState("A hold has ended.", details={"hold": ended[0].pk, "status": ended[0].status})
    amounts = {h.pk: h.remaining for h in locked.values()}
    new = Hold.objects.create(
        account_id=account_id,
        asset_id=asset_id,
        kind=kind,
        reference=reference,
        quantity=sum(amounts.values()),
        remaining=sum(amounts.values()),
        created_at=timezone.now(),
    )
    if Asset.objects.filter(pk=asset_id, serialised=True).exists():
        _SerialBook().move(
            [
                _BlockMove(
                    asset_id=asset_id,
                    account_id=account_id,
                    quantity=amount,
                    take_hold_id=hold_id,
                    take_range=None,
                    new_units=False,
                    dest_account_id=account_id,
                    dest_state=BlockState.HELD,
                    dest_hold_id=new.pk,
                )
                for hold_id, amount in sorted(amounts.items())
            ]
        )
    _consume_holds(locked, amounts, status)
    return new


# --- serial blocks -------------------------------------------------------------------------------------
@dataclass(slots=True)
class _BlockMove:
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

    def same_holding(self, other: _Block) -> bool:
        return (self.account_id, self.state, self.hold_id) == (other.account_id, other.state, other.hold_id)


@dataclass(slots=True)
class _SerialBook:
    """An in-memory view of the blocks one posting touches, written back in two statements."""

    loaded: dict[int, _Block] = field(default_factory=dict)
    asset_of: dict[int, int] = field(default_factory=dict)
    groups: dict[tuple[Any, ...], list[_Block]] = field(default_factory=lambda: defaultdict(list))
    gone: set[int] = field(default_factory=set)
    # New blocks by identity, in the order made: a piece cut again later in the posting is dropped in O(1).
    created: dict[int, tuple[int, _Block]] = field(default_factory=dict)

    pending: list[Any] = field(default_factory=list)
    block_rows: list[tuple[Any, ...]] = field(default_factory=list)

    def move(self, moves: Sequence[_BlockMove | None], *, write_inserts: bool = True) -> list[list[tuple[int, int]]]:
        """Apply the moves; return, per move, the ranges it moved (empty for ``None``).

        The cut blocks are deleted here; the new ones are inserted too unless ``write_inserts`` is False,
        when the caller writes ``block_rows`` itself (after the delete, e.g. with its other rows).
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
        self._merge_and_write()
        if write_inserts:
            bulk_insert(SerialBlock._meta.db_table, BLOCK_COLUMNS, self.block_rows)
            self.block_rows = []
        return result

    def _ready(self, m: _BlockMove) -> bool:
        """Whether the blocks this move takes from hold enough now."""
        if m.new_units:
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

    # loading: three queries at most, whatever the number of moves
    def send(self, moves: Sequence[_BlockMove | None]) -> None:
        """Send the queries that load the blocks the moves take; ``move`` reads their answers.

        Sent right after the balance locks and before their answer (pipeline mode), they cost no round
        trip of their own. They must run after the locks: the balance lock guards an account's blocks.
        """
        real = [m for m in moves if m is not None]
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
            else:
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
            self.pending.append(cursor)
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
            self.pending.append(cursor)
        if holds:
            placeholders = ", ".join(["%s"] * len(holds))
            cursor = connection.cursor()
            cursor.execute(f"SELECT {columns} FROM {table} WHERE hold_id IN ({placeholders})", sorted(holds))
            self.pending.append(cursor)
        if not self.pending:
            self.pending.append(None)

    def _receive(self) -> None:
        for cursor in self.pending:
            if cursor is None:
                continue
            try:
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
    def _apply(self, m: _BlockMove) -> list[tuple[int, int]]:
        if m.new_units:
            assert m.take_range is not None
            taken = [m.take_range]
        elif m.take_range is not None:
            taken = self._take_range(m)
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

    def _take_lowest(self, blocks: list[_Block], m: _BlockMove) -> list[tuple[int, int]]:
        need = m.quantity
        taken: list[tuple[int, int]] = []
        while need > 0:
            if not blocks:
                raise LedgerCorrupted(
                    f"account {m.account_id} asset {m.asset_id}: balance shows units that no serial block holds"
                )
            block = blocks[0]
            self._retire_loaded(block)
            if block.size <= need:
                taken.append((block.first, block.last))
                need -= block.size
                blocks.pop(0)
            else:
                taken.append((block.first, block.first + need - 1))
                rest = _Block(block.first + need, block.last, block.account_id, block.state, block.hold_id)
                blocks[0] = rest
                self._add(m.asset_id, rest)
                need = 0
        return taken

    def _take_range(self, m: _BlockMove) -> list[tuple[int, int]]:
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

    # merging with neighbours and writing back
    def _merge_and_write(self) -> None:
        created = list(self.created.values())
        neighbours = self._load_neighbours(created)
        by_asset: dict[int, list[_Block]] = defaultdict(list)
        for asset, block in created:
            by_asset[asset].append(block)
        for asset, block in neighbours:
            by_asset[asset].append(block)
        final: list[tuple[int, _Block]] = []
        for asset, blocks in by_asset.items():
            blocks.sort(key=lambda b: b.first)
            run: _Block | None = None
            for block in blocks:
                if run is not None and run.last + 1 == block.first and run.same_holding(block):
                    # Both pieces are replaced by the merged block: a stored neighbour below the new
                    # block is as gone as one above it.
                    for merged in (run, block):
                        if merged.id is not None:
                            self.gone.add(merged.id)
                    run = _Block(run.first, block.last, run.account_id, run.state, run.hold_id)
                    continue
                if run is not None:
                    final.append((asset, run))
                run = block
            if run is not None:
                final.append((asset, run))
        # A neighbour that merged into nothing stays as it is; everything else is rewritten.
        inserts = [(asset, b) for asset, b in final if b.id is None or b.id in self.gone]
        table = SerialBlock._meta.db_table
        delete_ids(table, sorted(self.gone))
        self.block_rows = [(asset, b.first, b.last, b.account_id, b.state, b.hold_id) for asset, b in inserts]

    def _load_neighbours(self, created: list[tuple[int, _Block]]) -> list[tuple[int, _Block]]:
        """Blocks in the database that touch a new block and could merge with it (one indexed query)."""
        if not created:
            return []
        below = sorted({(asset, b.first - 1) for asset, b in created if b.first > 1})
        above = sorted({(asset, b.last + 1) for asset, b in created})
        table = SerialBlock._meta.db_table
        rows = self._neighbour_rows(table, below, above)
        result = []
        for row_id, asset_id, first, last, account_id, state, hold_id in rows:
            if row_id in self.gone:
                continue  # already cut by this posting: its pieces are in ``created``
            block = self.loaded.get(row_id) or _Block(first, last, account_id, state, hold_id, row_id)
            result.append((asset_id, block))
        return result

    @staticmethod
    def _neighbour_rows(
        table: str, below: list[tuple[int, int]], above: list[tuple[int, int]]
    ) -> list[tuple[Any, ...]]:
        """Per asset, the serials as one array each: index scans on (asset, last) and (asset, first)."""
        parts: list[str] = []
        params: list[Any] = []
        for column, keys in (("last", below), ("first", above)):
            by_asset: dict[int, list[int]] = defaultdict(list)
            for asset, serial in keys:
                by_asset[asset].append(serial)
            for asset, serials in by_asset.items():
                parts.append(
                    f"SELECT id, asset_id, first, last, account_id, state, hold_id FROM {table} "
                    f"WHERE asset_id = %s AND {column} = ANY(%s::bigint[])"
                )
                params += [asset, serials]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ".join(parts), params)
            return cursor.fetchall()
