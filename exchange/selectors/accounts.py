"""Which accounts an actor may see or move from. "Not yours" is answered exactly like "unknown"."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.actors import Actor
from core.db import fetch_rows
from exchange.errors import AccountNotFound
from exchange.models import Account, AccountKind


def may_move_from(actor: Actor, account: Account) -> bool:
    """Who may move units out of an account: the participant whose holding account it is, and nobody else.

    The one statement of this rule: the services check it (``exchange.services.accounts.check_source``) and
    the API's look-ups of a source account use it.
    """
    return account.kind == AccountKind.HOLDING and actor.owns(account.participant_id)


def accounts_visible_to(actor: Actor) -> QuerySet[Account]:
    queryset = Account.objects.select_related("participant")
    if actor.sees_everything:
        return queryset
    return queryset.filter(participant_id=actor.member_participant_id)


def account_visible(actor: Actor, number: str, *, with_participant: bool = True) -> Account:
    """The account if the actor may see it. ``with_participant=False``: only the row, read without an ORM
    query to compose (the holdings read)."""
    if not with_participant:
        if actor.sees_everything:
            rows = fetch_rows(Account, "number = %s", [number])
        else:
            rows = fetch_rows(Account, "number = %s AND participant_id = %s", [number, actor.participant_id])
        if not rows:
            raise AccountNotFound(details={"account": number})
        return rows[0]
    account = accounts_visible_to(actor).filter(number=number).first()
    if account is None:
        raise AccountNotFound(details={"account": number})
    return account


def account_owned(actor: Actor, number: str) -> Account:
    """One of the actor's own holding accounts (the source of a movement)."""
    if actor.participant_id is None:
        raise AccountNotFound(details={"account": number})
    account = Account.objects.select_related("participant").filter(number=number).first()
    if account is None or not may_move_from(actor, account):
        raise AccountNotFound(details={"account": number})
    return account


def holding_account(number: str) -> Account:
    """Any participant's holding account (a destination): numbers are shared to receive units."""
    account = Account.objects.select_related("participant").filter(number=number, kind=AccountKind.HOLDING).first()
    if account is None:
        raise AccountNotFound.destination(number)
    return account


def any_account(number: str) -> Account:
    account = Account.objects.select_related("participant").filter(number=number).first()
    if account is None:
        raise AccountNotFound(details={"account": number})
    return account


def transfer_accounts(actor: Actor, source: str, destination: str) -> tuple[Account, Account]:
    """One of the actor's holding accounts and any holding account, in one query (the transfer API)."""
    found = {
        a.number: a for a in fetch_rows(Account, "number IN (%s, %s) AND kind = %s", [source, destination, "holding"])
    }
    src = found.get(source)
    if src is None or not may_move_from(actor, src):
        raise AccountNotFound(details={"account": source})
    dst = found.get(destination)
    if dst is None:
        raise AccountNotFound.destination(destination)
    return src, dst
