"""Transfers between participants' holding accounts."""

from __future__ import annotations

from accounts.actors import Actor
from exchange.db import pipeline
from exchange.errors import AccountNotFound, AssetNotTransferable, InvalidDestination, SameAccount
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    BlockState,
    Posting,
    SerialMovement,
    Transaction,
    TransactionKind,
)
from exchange.services.audit import audit_record, service
from exchange.services.issuance import _check_quantity
from exchange.services.ledger import Leg, Posted, journal_open, ledger_post


def check_source(actor: Actor, account: Account) -> None:
    """The actor may move units out of ``account``: it is one of their participant's holding accounts.

    Anyone else's account, the registry's included, is answered as not found.
    """
    actor.require_can_act()
    if account.kind != AccountKind.HOLDING or not actor.owns(account.participant_id):
        raise AccountNotFound(details={"account": account.number})


def check_transfer(*, actor: Actor, source: Account, destination: Account, asset: Asset, quantity: int) -> None:
    check_source(actor, source)
    _check_quantity(quantity)
    if source.pk == destination.pk:
        raise SameAccount(details={"account": source.number})
    if destination.kind != AccountKind.HOLDING:
        raise InvalidDestination(
            "Transfers go to participants' holding accounts; retire or surrender instead.",
            details={"account": destination.number},
        )
    if not asset.transferable or asset.is_cash:
        raise AssetNotTransferable(details={"asset": asset.code})


@service
def transfer_create(
    *,
    actor: Actor,
    source: Account,
    destination: Account,
    asset: Asset,
    quantity: int,
    idempotency_key: str | None = None,
    memo: str = "",
    serials: tuple[int, int] | None = None,
) -> Transaction:
    """Move ``quantity`` available units (lowest serials first, or exactly ``serials``) to another account."""
    check_transfer(actor=actor, source=source, destination=destination, asset=asset, quantity=quantity)
    request = {
        "source": source.number,
        "destination": destination.number,
        "asset": asset.code,
        "quantity": quantity,
        "memo": memo,
        "serials": list(serials) if serials else None,
    }
    # One pipeline for the whole entry: BEGIN rides with the journal row, and the writes with the audit event.
    with pipeline():
        txn, replayed = journal_open(
            kind=TransactionKind.TRANSFER, actor=actor, idempotency_key=idempotency_key, request=request, memo=memo
        )
        if replayed:
            return txn
        posted = ledger_post(txn, [Leg(asset, source, destination, quantity, serials=serials)])
        audit_record(
            actor=actor,
            action="transfer.create",
            obj=txn,
            payload={**request, "ranges": [list(r) for r in posted.ranges[0]]},
            at=txn.created_at,
        )
    attach_result(txn, posted, [(source, destination, asset, quantity)])
    return txn


def attach_result(txn: Transaction, posted: Posted, moves: list[tuple[Account, Account, Asset, int]]) -> None:
    """Give ``txn`` the postings and serial movements just written, so the response needs no query."""
    postings, movements = [], []
    running = {key: bal.total for key, bal in posted.balances.items()}
    for (source, destination, asset, quantity), ranges in reversed(list(zip(moves, posted.ranges, strict=True))):
        # Walk back from the balances after the entry to each posting's balance after it.
        for account, signed in ((destination, quantity), (source, -quantity)):
            key = (account.pk, asset.pk)
            postings.append(
                Posting(transaction=txn, account=account, asset=asset, quantity=signed, balance_after=running[key])
            )
            running[key] -= signed
        movements.extend(
            SerialMovement(
                transaction=txn,
                asset=asset,
                first=first,
                last=last,
                source=source,
                destination=destination,
                state=BlockState.AVAILABLE,
            )
            for first, last in reversed(ranges)
        )
    txn._postings = postings[::-1]  # type: ignore[attr-defined]
    txn._movements = movements[::-1]  # type: ignore[attr-defined]


__all__ = ["check_source", "check_transfer", "transfer_create"]
