"""Taking units out of circulation for good: retirement for offsetting, and the registry's cancellations.

An ``idempotency_key`` is claimed by ``@idempotent_service`` (``exchange.services.idempotency``).
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core.errors import InvalidInput
from core.i18n import registry_text
from core.limits import check_quantity
from exchange.errors import AccountNotFound
from exchange.models import Account, AccountKind, Asset, Retirement, Transaction, TransactionKind
from exchange.services.accounts import check_source, system_account
from exchange.services.audit import audit_record, service
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import Leg, journal_open, ledger_post


@service
@idempotent_service("retirement_create")
def retirement_create(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    quantity: int,
    beneficiary: str,
    reason: str,
    idempotency_key: str | None = None,
    serials: tuple[int, int] | None = None,
) -> Retirement:
    """Retire units for offsetting on behalf of ``beneficiary``: they go to the retirement sink for good."""
    check_source(actor, account)
    check_quantity(quantity)
    if asset.is_cash:
        raise InvalidInput(gettext("Cash can't be retired."), details={"asset": asset.code})
    beneficiary, reason = beneficiary.strip(), reason.strip()
    if not beneficiary or not reason:
        raise InvalidInput(gettext("A retirement names its beneficiary and its reason."))
    request = {
        "account": account.number,
        "asset": asset.code,
        "quantity": quantity,
        "beneficiary": beneficiary,
        "reason": reason,
        "serials": list(serials) if serials else None,
    }
    txn, _ = journal_open(
        kind=TransactionKind.RETIREMENT,
        actor=actor,
        idempotency_key=None,
        request=request,
        memo=registry_text(gettext_noop("Retired for %(beneficiary)s"), {"beneficiary": beneficiary}),
        metadata={"beneficiary": beneficiary, "reason": reason},
    )
    posted = ledger_post(txn, [Leg(asset, account, system_account(AccountKind.RETIREMENT), quantity, serials=serials)])
    retirement = Retirement.objects.create(
        transaction=txn,
        account=account,
        asset=asset,
        quantity=quantity,
        beneficiary=beneficiary,
        reason=reason,
        created_at=txn.created_at,
    )
    audit_record(
        actor=actor,
        action="retirement.create",
        obj=txn,
        payload={
            **request,
            "retirement": retirement.pk,
            "ranges": [list(r) for r in posted.ranges[0]],
            "entry_digest": posted.digest,
        },
        at=txn.created_at,
    )
    return retirement


@service
@idempotent_service("units_cancel")
def units_cancel(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    quantity: int,
    reason: str,
    idempotency_key: str | None = None,
    serials: tuple[int, int] | None = None,
    kind: str = TransactionKind.CANCELLATION,
) -> Transaction:
    """Cancel available units of any holding account (registry only): a correction, recorded for good."""
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)
    check_quantity(quantity)
    if account.kind != AccountKind.HOLDING:
        raise AccountNotFound(details={"account": account.number})
    if asset.is_cash:
        raise InvalidInput(gettext("Cash can't be cancelled."), details={"asset": asset.code})
    if not reason.strip():
        raise InvalidInput(gettext("A cancellation gives its reason."))
    request = {
        "account": account.number,
        "asset": asset.code,
        "quantity": quantity,
        "reason": reason,
        "serials": list(serials) if serials else None,
    }
    txn, _ = journal_open(kind=kind, actor=actor, idempotency_key=None, request=request, memo=reason[:500])
    posted = ledger_post(
        txn, [Leg(asset, account, system_account(AccountKind.CANCELLATION), quantity, serials=serials)]
    )
    audit_record(
        actor=actor,
        action="units.cancel",
        obj=txn,
        payload={**request, "kind": kind, "ranges": [list(r) for r in posted.ranges[0]], "entry_digest": posted.digest},
        at=txn.created_at,
    )
    return txn
