"""The one posting service: every movement of units or cash goes through ``ledger_post``.

A movement is a list of ``Leg``s (an asset, a source, a destination, a quantity). Posting them:

1. locks the balance rows of every (account, asset) touched, in key order, then the consumed holds;
2. checks that each consumed hold has enough left and that no participant balance goes below its held
   amount (``insufficient_available``);
3. writes the balances, one posting per side with the balance after it, and what the consumed holds have
   left (a hold used up ends). Steps 1 to 3 are the balance bookkeeping every posting shares with the single
   transfer's function: one SQL function, ``greenledger_balances_post`` (``exchange/sql``), called through
   ``balances_post`` (``exchange.services.balances``);
4. moves serial blocks set-wise (``exchange.services.serial_book``): takes the lowest serials first (or a
   hold's blocks, or an exact range), splits blocks where a movement takes part of one, and puts the
   pieces back through ``greenledger_blocks_put``, which merges adjacent blocks of one holding;
5. writes the serial movements.

Every leg is balanced by construction (the source loses what the destination gains); a deferred trigger
checks it again at commit. Callers are services: they open the journal entry with ``journal_open``
(``exchange.services.journal``, which makes them idempotent), post, and record their audit event, all in
one database transaction. The number of statements does not grow with the number of legs.

The posting path's other parts live beside it, one concern each, and are named here too, as callers have
always imported them from this module: the journal entry (``exchange.services.journal``), balance rows
(``exchange.services.balances``), holds (``exchange.services.holds``) and the serial book
(``exchange.services.serial_book``). See docs/architecture.md, The posting path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.utils.translation import gettext

from core.errors import InvalidQuantity
from exchange.audit_proof import entry_digest
from exchange.bulk import write_all
from exchange.errors import InvalidState, SameAccount
from exchange.locks import HoldRef, LockedBalance, LockedHold
from exchange.models import (
    SINK_STATE,
    Account,
    AccountKind,
    Asset,
    BlockState,
    Hold,
    HoldStatus,
    SerialMovement,
    Transaction,
)
from exchange.services.balances import balances_post, insufficient_available
from exchange.services.holds import hold_place, hold_release, holds_consolidate, holds_release
from exchange.services.journal import journal_open, journal_replay, request_hash
from exchange.services.serial_book import BlockMove, LedgerCorrupted, SerialBook, SerialsNotAvailable

__all__ = [
    "LedgerCorrupted",
    "Leg",
    "Posted",
    "SerialsNotAvailable",
    "hold_place",
    "hold_release",
    "holds_consolidate",
    "holds_release",
    "insufficient_available",
    "journal_open",
    "journal_replay",
    "ledger_post",
    "request_hash",
]

MOVEMENT_COLUMNS = ("transaction_id", "asset_id", "first", "last", "source_id", "destination_id", "state")
_TYPES = {"state": "text"}


def _typed(columns: Sequence[str]) -> list[tuple[str, str]]:
    return [(c, _TYPES.get(c, "bigint")) for c in columns]


# --- legs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Leg:
    """``quantity`` of ``asset`` from ``source`` to ``destination``.

    ``hold``: move units that hold reserved (and consume it by that much) instead of available ones.
    ``holds``: instead of one hold, several holds of the source that together reserved what moves, as
    (hold, quantity) pairs summing to ``quantity``, each consumed by its quantity: a settlement pays a buyer's
    many orders in one leg. Serialised units move from each hold's own blocks, in the order given.
    ``serials``: the exact inclusive range to move; required when the source is the issuance account
    (the new units), optional otherwise (e.g. retiring named serials).
    """

    asset: Asset
    source: Account
    destination: Account
    quantity: int
    hold: Hold | LockedHold | HoldRef | None = None
    serials: tuple[int, int] | None = None
    holds: Sequence[tuple[Hold | LockedHold | HoldRef, int]] = ()


@dataclass(slots=True)
class Posted:
    """What ``ledger_post`` did: how many postings, per leg the serial ranges it moved, the balances after."""

    postings: int
    ranges: list[list[tuple[int, int]]]
    balances: dict[tuple[int, int], LockedBalance]
    ended_holds: frozenset[int] = frozenset()  # the consumed holds this posting ended (used up)
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
        raise InvalidState(gettext("The hold is not on the source account and asset."), details={"hold": leg.hold.pk})
    if leg.holds:
        _check_holds(leg)
    issuing = leg.source.kind == AccountKind.ISSUANCE
    if leg.asset.serialised and issuing and leg.serials is None:
        raise ValueError("issuing serialised units needs the new serial range")
    if leg.serials is not None:
        first, last = leg.serials
        if first < 1 or last - first + 1 != leg.quantity:
            raise InvalidQuantity(
                gettext("The serial range does not match the quantity."), details={"serials": [first, last]}
            )
        if not leg.asset.serialised:
            raise InvalidQuantity(gettext("Cash has no serial numbers."))


def _check_holds(leg: Leg) -> None:
    """A leg funded by several holds: each on the source account and asset, each a positive whole quantity,
    together the leg's quantity, and serials named by none of them (they come from the holds' blocks)."""
    if leg.hold is not None or leg.serials is not None:
        raise ValueError("a leg funded by several holds names neither one hold nor serials")
    account_id, asset_id = leg.source.pk, leg.asset.pk
    total = 0
    for hold, quantity in leg.holds:
        if hold.account_id != account_id or hold.asset_id != asset_id:
            raise InvalidState(gettext("The hold is not on the source account and asset."), details={"hold": hold.pk})
        if type(quantity) is not int or quantity <= 0:
            raise InvalidQuantity(details={"quantity": str(quantity)})
        total += quantity
    if total != leg.quantity:
        raise InvalidQuantity(
            gettext("The holds do not add up to the quantity."), details={"quantity": leg.quantity, "holds": total}
        )


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
        elif leg.holds:
            deltas[src][1] -= leg.quantity
            for hold, quantity in leg.holds:
                hold_use[hold.pk] += quantity
        else:
            outgoing[src] += leg.quantity
        if leg.source.kind == AccountKind.ISSUANCE:
            negative.add(leg.source.pk)

    accounts = {leg.source.pk: leg.source for leg in legs} | {leg.destination.pk: leg.destination for leg in legs}
    assets = {leg.asset.pk: leg.asset for leg in legs}
    # What the postings are (key, quantity), in the order written; the function adds each balance after.
    postings: list[tuple[tuple[int, int], int]]
    if net:
        postings = [(key, d_total) for key, (d_total, _) in deltas.items() if d_total]
    else:
        postings = [
            posting
            for leg in legs
            for posting in (
                ((leg.source.pk, leg.asset.pk), -leg.quantity),
                ((leg.destination.pk, leg.asset.pk), leg.quantity),
            )
        ]

    # In a caller's pipeline (``core.db.pipeline``) the reads wait for their answers and the writes at
    # the end go out together with whatever the caller sends next.
    book = SerialBook()
    # One block move per leg of serialised units (per hold, for a leg funded by several), None for cash;
    # ``owner`` gives each move's leg.
    block_moves: list[BlockMove | None] = []
    owner: list[int] = []
    for index, leg in enumerate(legs):
        if not leg.asset.serialised:
            block_moves.append(None)
            owner.append(index)
            continue
        parts: list[tuple[int | None, int]] = [(hold.pk, quantity) for hold, quantity in leg.holds] or [
            (leg.hold.pk if leg.hold else None, leg.quantity)
        ]
        for take_hold_id, quantity in parts:
            block_moves.append(
                BlockMove(
                    asset_id=leg.asset.pk,
                    account_id=leg.source.pk,
                    quantity=quantity,
                    take_hold_id=take_hold_id,
                    take_range=leg.serials,
                    new_units=leg.source.kind == AccountKind.ISSUANCE,
                    dest_account_id=leg.destination.pk,
                    dest_state=_destination_state(leg.destination),
                    dest_hold_id=None,
                )
            )
            owner.append(index)
    send = (lambda: book.send(block_moves)) if any(m is not None for m in block_moves) else None
    # The bookkeeping (balance and hold locks, the refusals, the balances, postings and holds written) is one
    # statement; the block reads go out behind it, before its answer: one round trip for both.
    balances, ended_holds = balances_post(
        txn.pk,
        deltas,
        outgoing,
        negative,
        hold_use,
        postings,
        accounts=accounts,
        assets=assets,
        then=send,
        ended_hold_status=ended_hold_status,
    )

    ranges: list[list[tuple[int, int]]] = [[] for _ in legs]
    for index, moved in zip(owner, book.move(block_moves), strict=True):
        ranges[index].extend(moved)

    movements = [
        (txn.pk, leg.asset.pk, first, last, leg.source.pk, leg.destination.pk, _destination_state(leg.destination))
        for leg, leg_ranges in zip(legs, ranges, strict=True)
        for first, last in leg_ranges
    ]
    # The blocks are written already (deleted, then put), the balances, postings and holds too.
    write_all(inserts=[(SerialMovement._meta.db_table, _typed(MOVEMENT_COLUMNS), movements)])
    digest = entry_digest(txn.kind, txn.created_at, [(acc, asset, q) for (acc, asset), q in postings])
    return Posted(postings=len(postings), ranges=ranges, balances=balances, ended_holds=ended_holds, digest=digest)
