"""Accounts: opening participant holding accounts, the system accounts the ledger needs, and the check that
an actor may move units out of an account."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.errors import ParticipantSuspended, WrongParticipantKind
from accounts.models import HOLDER_KINDS, Participant, ParticipantKind
from exchange.errors import AccountNotFound
from exchange.models import Account, AccountKind
from exchange.selectors.accounts import may_move_from
from exchange.services.audit import audit_record, service

SYSTEM_ACCOUNT_NUMBERS = {
    AccountKind.ISSUANCE: "SYS-ISSUANCE",
    AccountKind.RETIREMENT: "SYS-RETIREMENT",
    AccountKind.CANCELLATION: "SYS-CANCELLATION",
    AccountKind.SURRENDER: "SYS-SURRENDER",
    AccountKind.FEE: "SYS-FEES",
    AccountKind.CLEARING: "SYS-CLEARING",
}

_system_cache: dict[str, Account] = {}


def check_source(actor: Actor, account: Account) -> None:
    """The actor may move units out of ``account``: it is one of their participant's holding accounts.

    Anyone else's account, the registry's included, is answered as not found.
    """
    actor.require_can_act()
    if not may_move_from(actor, account):
        raise AccountNotFound(details={"account": account.number})


def system_account(kind: str) -> Account:
    """The one system account of this kind, created on first use (cached per process once committed)."""
    account = _system_cache.get(kind)
    if account is None:
        try:
            with transaction.atomic():
                account, _ = Account.objects.get_or_create(
                    kind=kind,
                    defaults={
                        "number": SYSTEM_ACCOUNT_NUMBERS[AccountKind(kind)],
                        "name": AccountKind(kind).label,
                    },
                )
        except IntegrityError:
            account = Account.objects.get(kind=kind)
        # Remember it only once the caller's transaction commits: an account created by a call that is
        # then refused and rolled back never existed, and posting to it would fail at every later commit.
        found = account
        transaction.on_commit(lambda: _system_cache.setdefault(kind, found))
    return account


def clear_caches() -> None:
    """Forget cached system accounts (tests that flush the database call this)."""
    _system_cache.clear()


def holding_number(pk: int) -> str:
    return f"CN-100-{pk:06d}"


@service
def account_open(*, actor: Actor, participant: Participant, name: str = "") -> Account:
    """Open a holding account for a participant: the registry for anyone, an admin for their own."""
    # Every kind passes the acting check (a registry viewer can't open accounts); the registry's traders
    # open them for anyone (as participant registration does), another participant's admins for their own.
    actor.require_can_act()
    if not actor.is_system and not actor.is_kind(ParticipantKind.REGISTRY):
        actor.require_role("admin")
        if not actor.owns(participant.pk):
            raise WrongParticipantKind(gettext("Only the registry opens accounts for other participants."))
    if participant.kind not in HOLDER_KINDS:
        raise WrongParticipantKind(
            gettext("A %(kind)s holds no units of its own.") % {"kind": participant.get_kind_display().lower()},
            details={"participant_kind": participant.kind},
        )
    if not participant.is_active:
        raise ParticipantSuspended(gettext("A suspended participant can't open accounts."))
    account = Account.objects.create(
        number=f"pending-{uuid.uuid4().hex[:24]}", kind=AccountKind.HOLDING, participant=participant, name=name
    )
    account.number = holding_number(account.pk)
    Account.objects.filter(pk=account.pk).update(number=account.number)
    audit_record(
        actor=actor,
        action="account.open",
        obj=account,
        payload={"number": account.number, "participant": participant.pk, "name": name},
    )
    return account
