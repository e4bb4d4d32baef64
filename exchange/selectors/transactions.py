"""Journal entries as their parties and the overseers may see them."""

from __future__ import annotations

from accounts.actors import Actor
from core.errors import NotFound
from core.errors import translatable as _
from exchange.models import Posting, SerialMovement, Transaction, TransactionKind


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    default_message = _("No such transaction, or not yours.")


# Entries that carry many parties who must not see each other: a settlement batch books every trade of
# the day (anonymous on the exchange) in one transaction.
MARKET_WIDE_KINDS = frozenset({TransactionKind.SETTLEMENT})


def transaction_for(actor: Actor, pk: int) -> tuple[Transaction, list[Posting], list[SerialMovement]]:
    """A transaction with its postings and serial ranges, if the actor is a party to it or an overseer.

    Overseers see every leg. In a market-wide entry (a settlement batch) a participant sees its own legs
    only: the postings of its own accounts, and the serial ranges into or out of them with the
    counterparty's account left out (null).
    """
    txn = Transaction.objects.filter(pk=pk).first()
    if txn is None:
        raise TransactionNotFound(details={"transaction": pk})
    postings = list(
        Posting.objects.filter(transaction=txn).select_related("account__participant", "asset").order_by("id")
    )
    party = any(p.account.participant_id == actor.participant_id for p in postings if actor.participant_id)
    if not (actor.sees_everything or party or txn.actor_participant_id == actor.participant_id):
        raise TransactionNotFound(details={"transaction": pk})
    movements = list(
        SerialMovement.objects.filter(transaction=txn).select_related("asset", "source", "destination").order_by("id")
    )
    if txn.kind in MARKET_WIDE_KINDS and not actor.sees_everything:
        postings, movements = _own_legs(actor, postings, movements)
    return txn, postings, movements


def _own_legs(
    actor: Actor, postings: list[Posting], movements: list[SerialMovement]
) -> tuple[list[Posting], list[SerialMovement]]:
    mine = {p.account_id for p in postings if actor.owns(p.account.participant_id)}
    own_movements = []
    for movement in movements:
        if movement.source_id not in mine and movement.destination_id not in mine:
            continue
        # The other side of the range is another participant's account: shown as null (see
        # exchange.api.representations).
        movement.hidden_sides = frozenset(  # type: ignore[attr-defined]
            side for side in ("source", "destination") if getattr(movement, f"{side}_id") not in mine
        )
        own_movements.append(movement)
    return [p for p in postings if p.account_id in mine], own_movements
