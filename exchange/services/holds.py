"""Holds: reservations of units or cash (an open order, a pending transfer, a pledge, a transfer under review).

A hold is placed once and ends once. Placing one moves the reserved serial blocks to the held state under
the hold (``exchange.services.serial_book``) and raises the balance's ``held``; releasing one gives them back
(``consume_holds``, as does consolidating several into one); a posting consumes the holds a leg moves units out
of in ``greenledger_balances_post``, through ``ledger_post``. Every function runs inside its
service's transaction and takes its locks in the one order (``exchange.locks``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext

from core.errors import InvalidQuantity
from exchange.bulk import bulk_update
from exchange.errors import InvalidState
from exchange.locks import HoldRef, LockedHold, lock_balances, lock_holds
from exchange.models import Account, Asset, BlockState, Hold, HoldKind, HoldStatus
from exchange.services.balances import insufficient_available, write_balances
from exchange.services.serial_book import BlockMove, SerialBook

HOLD_WRITE = [("remaining", "bigint"), ("status", "text"), ("ended_at", "timestamptz")]


def hold_rows(holds: dict[int, LockedHold], use: dict[int, int], final_status: str) -> list[tuple[Any, ...]]:
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


def consume_holds(holds: dict[int, LockedHold], use: dict[int, int], final_status: str) -> None:
    bulk_update(Hold._meta.db_table, HOLD_WRITE, hold_rows(holds, use, final_status))


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
        SerialBook().move(
            [
                BlockMove(
                    asset_id=asset.pk,
                    account_id=account.pk,
                    quantity=quantity,
                    take_hold_id=None,
                    take_range=serials,
                    new_units=False,
                    dest_account_id=account.pk,
                    # A judicial freeze's blocks are ``frozen``, any other hold's ``held`` (Hold.block_state).
                    dest_state=BlockState.FROZEN if kind == HoldKind.JUDICIAL_FREEZE else BlockState.HELD,
                    dest_hold_id=hold.pk,
                )
            ]
        )
    write_balances({key: balance}, {key: [0, quantity]})
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
    releases: Sequence[tuple[Hold | LockedHold | HoldRef, int | None]], *, status: str = HoldStatus.RELEASED
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
                gettext("Can't release more than the hold has left."),
                details={"hold": hold.pk, "remaining": current.remaining, "requested": amount},
            )
        amounts[hold.pk] = amounts.get(hold.pk, 0) + amount
    if not amounts:
        return {}
    serialised = set(
        Asset.objects.filter(pk__in={locked[h].asset_id for h in amounts}, serialised=True).values_list("pk", flat=True)
    )
    moves = [
        BlockMove(
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
        SerialBook().move(moves)
    deltas: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for h, amount in amounts.items():
        deltas[(locked[h].account_id, locked[h].asset_id)][1] -= amount
    write_balances(balances, deltas)
    consume_holds(locked, amounts, status)
    return amounts


def holds_consolidate(
    holds: Sequence[Hold],
    *,
    kind: str,
    reference: str,
    status: str = HoldStatus.ENFORCED,
    take: Mapping[int, int] | None = None,
) -> Hold:
    """Hand what several active holds of one account and asset reserve to one new hold, block for block.

    Nothing becomes available in between: the same serial blocks stay held, now by the new hold, the
    balance's ``held`` does not change, and the old holds end with ``status``. ``take`` (hold id -> units)
    hands over only that much of each hold, its lowest blocks; a hold partly taken stays active with the
    rest. (A pledge enforced by sale hands the units it offers to the sale order this way.)
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
        raise InvalidState(gettext("A hold has ended."), details={"hold": ended[0].pk, "status": ended[0].status})
    amounts = {h.pk: h.remaining for h in locked.values()}
    if take is not None:
        if set(take) != set(amounts) or any(not 0 < take[pk] <= amounts[pk] for pk in amounts):
            raise ValueError("take names each hold once, from 1 to what it reserves")
        amounts = dict(take)
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
        SerialBook().move(
            [
                BlockMove(
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
    consume_holds(locked, amounts, status)
    return new
