"""Transfers between participants' holding accounts."""

from __future__ import annotations

from accounts.actors import Actor
from exchange.errors import AccountNotFound, AssetNotTransferable, InvalidDestination, SameAccount
from exchange.models import Account, AccountKind, Asset, PendingTransfer, Transaction, TransactionKind
from exchange.services.audit import audit_record, service
from exchange.services.issuance import _check_quantity
from exchange.services.ledger import Leg, journal_open, ledger_post
from exchange.services.trust import needs_delay, pending_transfer_create


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
) -> Transaction | PendingTransfer:
    """Move ``quantity`` available units (lowest serials first, or exactly ``serials``) to another account.

    To an account that is neither the sender's own nor on its trusted list, the transfer waits: the
    units are held now and a ``PendingTransfer`` is returned (``exchange.services.trust``).
    """
    check_transfer(actor=actor, source=source, destination=destination, asset=asset, quantity=quantity)
    request = {
        "source": source.number,
        "destination": destination.number,
        "asset": asset.code,
        "quantity": quantity,
        "memo": memo,
        "serials": list(serials) if serials else None,
    }
    if needs_delay(actor, destination):
        return pending_transfer_create(
            actor=actor,
            source=source,
            destination=destination,
            asset=asset,
            quantity=quantity,
            idempotency_key=idempotency_key,
            memo=memo,
            serials=serials,
            request=request,
        )
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
    return txn


__all__ = ["check_source", "check_transfer", "transfer_create"]
