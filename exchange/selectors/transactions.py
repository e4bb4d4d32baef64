"""Journal entries as their parties and the overseers may see them."""

from __future__ import annotations

from accounts.actors import Actor
from config.errors import NotFound
from exchange.models import Posting, SerialMovement, Transaction


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    default_message = "No such transaction, or not yours."


def transaction_for(actor: Actor, pk: int) -> tuple[Transaction, list[Posting], list[SerialMovement]]:
    """A transaction with its postings and serial ranges, if the actor is a party to it or an overseer."""
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
    return txn, postings, movements
