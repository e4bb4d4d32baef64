"""Journal entries as their parties and the overseers may see them.

Who sees whose postings: an overseer (registry, exchange, auditors) every posting of every entry. A participant
party to an entry (or whose user made it) sees every posting of an entry that books at most one other
participant (a transfer between two holders names both sides); of an entry that books several others at once
(a settlement batch always, the whole market's trades; a bulk allocation to many entities) it sees its own
postings and serial ranges and the entry's totals, not who else received or paid what.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from accounts.actors import Actor
from core.errors import NotFound
from core.errors import translatable as _
from exchange.models import Asset, Posting, SerialMovement, Transaction, TransactionKind


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    default_message = _("No such transaction, or not yours.")


# Entries whose parties must not see each other even when there are only two: a settlement batch books
# trades, anonymous on the exchange, in one transaction.
MARKET_WIDE_KINDS = frozenset({TransactionKind.SETTLEMENT})


@dataclass(frozen=True, slots=True)
class EntryTotal:
    """What an entry moved of one asset (the sum of its credits, which its debits equal) in how many postings."""

    asset: Asset
    quantity: int
    postings: int


def entry_totals(postings: Sequence[Any]) -> list[EntryTotal]:
    """The entry's totals per asset, in the order the assets first appear (of postings or the lines a service
    built as it wrote them: anything with ``asset`` and ``quantity``)."""
    moved: dict[str, list] = {}
    for posting in postings:
        total = moved.setdefault(posting.asset.code, [posting.asset, 0, 0])
        total[1] += max(posting.quantity, 0)
        total[2] += 1
    return [EntryTotal(asset, quantity, count) for asset, quantity, count in moved.values()]


def transaction_for(
    actor: Actor, pk: int
) -> tuple[Transaction, list[Posting], list[SerialMovement], list[EntryTotal]]:
    """A transaction with the postings and serial ranges the actor may see and the entry's totals, if the
    actor is a party to it or an overseer (the module's docstring says whose postings).

    Where a participant sees its own legs only, those are the postings of its own accounts and the serial
    ranges into or out of them with the other side's account left out (null).
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
    totals = entry_totals(postings)
    others = {p.account.participant_id for p in postings} - {None, actor.participant_id}
    if not actor.sees_everything and (txn.kind in MARKET_WIDE_KINDS or len(others) > 1):
        postings, movements = _own_legs(actor, postings, movements)
    return txn, postings, movements, totals


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
