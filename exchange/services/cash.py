"""Cash at the exchange: the CNY asset (integer fen), and the exchange operator's bookings of cash received from
and paid out to a participant's bank, each once per bank reference.

Held cash (open buy orders) can't leave, nor can cash of sales paid before they settled
(``exchange.services.proceeds``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core.errors import Conflict, InvalidInput
from core.errors import translatable as _
from core.money import fen_to_str
from exchange.errors import AccountNotFound, IdempotencyConflict
from exchange.models import Account, AccountKind, Asset, AssetKind, Transaction, TransactionKind
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record, service
from exchange.services.ledger import Leg, journal_open, ledger_post
from exchange.services.proceeds import check_withdrawable

CASH_CODE = "CNY"


class DuplicateBankReference(Conflict):
    code = "duplicate_bank_reference"
    default_message = _("A cash booking with this bank reference exists already.")


_cash: dict[str, Asset] = {}


def cash_asset() -> Asset:
    """The CNY asset (integer fen), created on first use; remembered once the transaction that found or
    made it commits (an asset from a rolled-back transaction never existed, and its id may be reused)."""
    asset = _cash.get(CASH_CODE)
    if asset is None:
        asset, _ = Asset.objects.get_or_create(
            code=CASH_CODE,
            defaults={"kind": AssetKind.CASH, "name": "Renminbi (fen)", "serialised": False, "transferable": False},
        )
        found = asset
        transaction.on_commit(lambda: _cash.setdefault(CASH_CODE, found))
    return asset


def clear_cash_cache() -> None:
    _cash.clear()


def _check_cash_account(account: Account) -> None:
    if account.kind != AccountKind.HOLDING:
        raise AccountNotFound(details={"account": account.number})


def _cash_entry(
    kind: str, actor: Actor, prefix: str, reference: str, request: dict[str, Any], memo: str
) -> Transaction:
    """The journal entry of a cash booking, once per bank reference.

    The bank reference is a uniqueness rule, not a replay: the journal keeps ``<prefix>:<reference>`` in
    its ``idempotency_key`` column under the exchange's scope, and that column's unique index refuses a
    second booking (``duplicate_bank_reference``). Retrying a request safely is the Idempotency-Key's job.
    """
    try:
        txn, replayed = journal_open(
            kind=kind,
            actor=actor,
            idempotency_key=f"{prefix}:{reference}",
            request=request,
            memo=memo,
            scope="exchange:cash",
        )
    except IdempotencyConflict:
        replayed = True
    if replayed:
        raise DuplicateBankReference(details={"reference": reference})
    return txn


@service
def cash_deposit(*, actor: Actor, account: Account, amount_fen: int, reference: str) -> Transaction:
    """Book cash received for a participant (exchange operator), once per bank reference."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.EXCHANGE)
    _check_cash_account(account)
    if amount_fen <= 0:
        raise InvalidInput(gettext("A deposit is a positive amount."), details={"amount": fen_to_str(amount_fen)})
    request = {"account": account.number, "amount": fen_to_str(amount_fen), "reference": reference}
    txn = _cash_entry(TransactionKind.DEPOSIT, actor, "deposit", reference, request, f"Deposit {reference}")
    posted = ledger_post(txn, [Leg(cash_asset(), system_account(AccountKind.ISSUANCE), account, amount_fen)])
    payload = {**request, "entry_digest": posted.digest}
    audit_record(actor=actor, action="cash.deposit", obj=txn, payload=payload, at=txn.created_at)
    return txn


@service
def cash_withdraw(*, actor: Actor, account: Account, amount_fen: int, reference: str) -> Transaction:
    """Pay cash out to a participant's bank (exchange operator); held cash (open buy orders) can't leave, nor
    can cash of sales paid before they settled (``proceeds_not_withdrawable``, ``exchange.services.proceeds``)."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.EXCHANGE)
    _check_cash_account(account)
    if amount_fen <= 0:
        raise InvalidInput(gettext("A withdrawal is a positive amount."), details={"amount": fen_to_str(amount_fen)})
    request = {"account": account.number, "amount": fen_to_str(amount_fen), "reference": reference}
    txn = _cash_entry(TransactionKind.WITHDRAWAL, actor, "withdrawal", reference, request, f"Withdrawal {reference}")
    posted = ledger_post(txn, [Leg(cash_asset(), account, system_account(AccountKind.ISSUANCE), amount_fen)])
    check_withdrawable(account, cash_asset(), amount_fen)  # sales' cash buys on T, leaves once settled (T+1)
    payload = {**request, "entry_digest": posted.digest}
    audit_record(actor=actor, action="cash.withdraw", obj=txn, payload=payload, at=txn.created_at)
    return txn
