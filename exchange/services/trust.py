"""Trusted accounts and pending transfers (see ``exchange.models.trust``).

- ``trusted_account_propose`` (an admin) and ``trusted_account_approve`` (another admin of the same
  participant) put an account on the list; it is effective ``TRUST_DELAY_SECONDS`` after approval.
  ``trusted_account_remove`` takes it off at once.
- ``transfer_create`` asks ``needs_delay``: a transfer to an account that is neither the sender's own nor
  effectively trusted becomes a pending transfer (``pending_transfer_create``) whose units are held at
  once; ``pending_transfer_cancel`` gives them back; ``pending_transfers_execute`` (scheduled every
  minute) carries out those whose delay has passed, skipping suspended senders.

Surrender, retirement and exchange settlement don't go through transfers and are never delayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import ParticipantStatus, Role
from core import clock
from core.errors import Conflict, Forbidden, NotFound
from core.errors import translatable as _
from exchange.errors import AccountNotFound, DuplicateObject
from exchange.faults import crash_point
from exchange.locks import lock_row, lock_rows
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    HoldKind,
    ParticipantTransfers,
    PendingStatus,
    PendingTransfer,
    Rulebook,
    TransactionKind,
    TrustedAccount,
    TrustStatus,
)
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.ledger import Leg, hold_place, hold_release, journal_open, ledger_post


class TrustSameAdmin(Forbidden):
    code = "trust_same_admin"
    default_message = _("A trusted account is approved by a second admin, not the one who proposed it.")


class TrustNotFound(NotFound):
    code = "trusted_account_not_found"
    default_message = _("No such trusted account entry, or not yours.")


class TrustNotProposed(Conflict):
    code = "trusted_account_not_proposed"
    default_message = _("Only a proposed entry can be approved.")


class PendingTransferNotFound(NotFound):
    code = "pending_transfer_not_found"
    default_message = _("No such pending transfer, or not yours.")


class PendingTransferNotPending(Conflict):
    code = "pending_transfer_not_pending"
    default_message = _("The transfer has been carried out or cancelled already.")


def _config(name: str) -> Any:
    return settings.GREENLEDGER[name]


def _require_admin(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_role(Role.ADMIN)


# --- the market's transfer rules ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TransferRules:
    """What the rulebook of an asset's market says about transfers between holders.

    ``participant_transfers``: ``free`` (any holder to any holder) or ``non_trade_only`` (to another
    participant only as a reviewed non-trade transfer, ``exchange.services.nontrade``). ``trusted_accounts``:
    whether transfers to another participant go through the trusted list and its delay; ``delay_seconds``:
    that delay (the rulebook's ``transfer_delay_hours``, or ``PENDING_TRANSFER_DELAY_SECONDS`` where it
    gives none).
    """

    participant_transfers: str
    trusted_accounts: bool
    delay_seconds: int

    @property
    def non_trade_only(self) -> bool:
        return self.participant_transfers == ParticipantTransfers.NON_TRADE_ONLY


def transfer_rules(asset: Asset, on: date | None = None) -> TransferRules:
    """The transfer rules of ``asset``'s market on ``on`` (today, China time): the rulebook version that
    ``exchange.selectors.rulebooks.rulebook_for`` picks, read in one query of the three fields.

    An instrument with no market, or before its market's first rulebook, transfers freely, with the trusted
    list as the deployment's ``TRUSTED_ACCOUNTS`` says.
    """
    row = None
    if asset.market_id is not None:
        row = (
            Rulebook.objects.filter(market_id=asset.market_id, effective_from__lte=on or clock.trading_day())
            .order_by("-effective_from", "-version")
            .values_list("participant_transfers", "trusted_accounts", "transfer_delay_hours")
            .first()
        )
    default_delay = int(_config("PENDING_TRANSFER_DELAY_SECONDS"))
    if row is None:
        return TransferRules(ParticipantTransfers.FREE, True, default_delay)
    participant_transfers, trusted, delay_hours = row
    return TransferRules(participant_transfers, trusted, delay_hours * 3600 if delay_hours else default_delay)


# --- the trusted-account list ------------------------------------------------------------------------------
def trust_decides(actor: Actor, destination: Account, rules: TransferRules | None = None) -> int | None:
    """The participant whose trusted list decides whether a transfer by ``actor`` to ``destination`` waits,
    or None when it never waits: trusted accounts off for the deployment (``TRUSTED_ACCOUNTS``) or for the
    market (the rulebook's ``trusted_accounts``, in ``rules``), a system actor, the actor's own account.

    The rest of the rule is ``needs_delay``'s query, which ``greenledger_transfer`` restates in SQL."""
    if not _config("TRUSTED_ACCOUNTS") or actor.is_system or actor.owns(destination.participant_id):
        return None
    if rules is not None and not rules.trusted_accounts:
        return None
    return actor.member_participant_id


def needs_delay(actor: Actor, destination: Account, rules: TransferRules | None = None) -> bool:
    """Whether a transfer by ``actor`` to ``destination`` must wait as a pending transfer: the deployment's
    ``TRUSTED_ACCOUNTS`` and the market's rulebook (``rules``) both use the trusted list, and the destination
    is neither the sender's own nor effectively trusted."""
    participant = trust_decides(actor, destination, rules)
    if participant is None:
        return False
    return not TrustedAccount.objects.filter(
        participant_id=participant,
        account=destination,
        status=TrustStatus.APPROVED,
        effective_at__lte=clock.now(),
    ).exists()


class UntrustedDestination(Conflict):
    code = "untrusted_destination"
    default_message = _("Batches go to your own or trusted accounts only; send this one as a single transfer.")


def untrusted_destinations(actor: Actor, destinations: list[Account], assets: list[Asset] | None = None) -> set[int]:
    """The ids among ``destinations`` a transfer by ``actor`` would have to wait for (one query), where the
    market of the asset sent there uses the trusted list (``assets``, one per destination)."""
    if not _config("TRUSTED_ACCOUNTS") or actor.is_system:
        return set()
    if assets is not None:
        uses_list = {asset.pk: transfer_rules(asset).trusted_accounts for asset in {a.pk: a for a in assets}.values()}
        destinations = [d for d, asset in zip(destinations, assets, strict=True) if uses_list[asset.pk]]
    foreign = {a.pk for a in destinations if not actor.owns(a.participant_id)}
    if not foreign:
        return set()
    trusted = set(
        TrustedAccount.objects.filter(
            participant_id=actor.member_participant_id,
            account_id__in=foreign,
            status=TrustStatus.APPROVED,
            effective_at__lte=clock.now(),
        ).values_list("account_id", flat=True)
    )
    return foreign - trusted


@service
def trusted_account_propose(*, actor: Actor, account: Account, label: str = "") -> TrustedAccount:
    """Propose an account for the participant's trusted list (an admin); a second admin approves it."""
    _require_admin(actor)
    if account.kind != AccountKind.HOLDING or actor.owns(account.participant_id):
        raise AccountNotFound(
            gettext("Trust another participant's holding account."), details={"account": account.number}
        )
    if (
        TrustedAccount.objects.filter(participant_id=actor.member_participant_id, account=account)
        .exclude(status=TrustStatus.REMOVED)
        .exists()
    ):
        raise DuplicateObject(
            _("%(account)s is on the list already.") % {"account": account.number}, details={"account": account.number}
        )
    entry = TrustedAccount.objects.create(
        participant_id=actor.member_participant_id,
        account=account,
        label=label[:200],
        proposed_by_id=actor.member_user_id,
        proposed_at=clock.now(),
    )
    audit_record(actor=actor, action="trust.propose", obj=entry, payload={"account": account.number, "label": label})
    return entry


def _own_entry(actor: Actor, entry: TrustedAccount) -> TrustedAccount:
    locked = lock_row(TrustedAccount.objects.filter(pk=entry.pk, participant_id=actor.member_participant_id))
    if locked is None:
        raise TrustNotFound(details={"trusted_account": entry.pk})
    return locked


@service
def trusted_account_approve(*, actor: Actor, entry: TrustedAccount) -> TrustedAccount:
    """Approve a proposed entry (a second admin of the participant); effective after the trust delay."""
    _require_admin(actor)
    locked = _own_entry(actor, entry)
    if locked.status != TrustStatus.PROPOSED:
        raise TrustNotProposed(details={"trusted_account": locked.pk, "status": locked.status})
    if locked.proposed_by_id == actor.user_id:
        raise TrustSameAdmin(details={"trusted_account": locked.pk})
    now = clock.now()
    locked.status, locked.approved_by_id, locked.approved_at = TrustStatus.APPROVED, actor.user_id, now
    locked.effective_at = now + timedelta(seconds=_config("TRUST_DELAY_SECONDS"))
    locked.save(update_fields=["status", "approved_by", "approved_at", "effective_at"])
    audit_record(
        actor=actor,
        action="trust.approve",
        obj=locked,
        payload={
            "account": locked.account_id,
            "proposed_by": locked.proposed_by_id,
            "effective_at": locked.effective_at,
        },
    )
    return locked


@service
def trusted_account_remove(*, actor: Actor, entry: TrustedAccount) -> TrustedAccount:
    """Take an account off the list at once (an admin)."""
    _require_admin(actor)
    locked = _own_entry(actor, entry)
    if locked.status == TrustStatus.REMOVED:
        mark_unchanged()
        return locked
    locked.status, locked.removed_at = TrustStatus.REMOVED, clock.now()
    locked.save(update_fields=["status", "removed_at"])
    audit_record(actor=actor, action="trust.remove", obj=locked, payload={"account": locked.account_id})
    return locked


# --- pending transfers --------------------------------------------------------------------------------------
def pending_transfer_create(
    *,
    actor: Actor,
    source: Account,
    destination: Account,
    asset: Asset,
    quantity: int,
    memo: str,
    serials: tuple[int, int] | None,
    request: dict[str, Any],
    delay_seconds: int | None = None,
) -> PendingTransfer:
    """Hold the units now and record the transfer to carry out after the delay (inside transfer_create,
    which claims the request's Idempotency-Key)."""
    now = clock.now()
    hold = hold_place(
        account=source,
        asset=asset,
        quantity=quantity,
        kind=HoldKind.PENDING_TRANSFER,
        reference=f"pending:{actor.participant_id}:{now.timestamp()}",
        serials=serials,
    )
    pending = PendingTransfer.objects.create(
        participant_id=actor.member_participant_id,
        source=source,
        destination=destination,
        asset=asset,
        quantity=quantity,
        memo=memo[:500],
        hold=hold,
        requested_by_id=actor.user_id,
        created_at=now,
        execute_after=now
        + timedelta(seconds=_config("PENDING_TRANSFER_DELAY_SECONDS") if delay_seconds is None else delay_seconds),
    )
    audit_record(
        actor=actor,
        action="transfer.pending",
        obj=pending,
        payload={**request, "hold": hold.pk, "execute_after": pending.execute_after},
        at=now,
    )
    return pending


@service
def pending_transfer_cancel(*, actor: Actor, pending: PendingTransfer) -> PendingTransfer:
    """Cancel one of your pending transfers: its units are available again at once."""
    actor.require_can_act()
    locked = lock_row(PendingTransfer.objects.filter(pk=pending.pk, participant_id=actor.member_participant_id))
    if locked is None:
        raise PendingTransferNotFound(details={"pending_transfer": pending.pk})
    if locked.status != PendingStatus.PENDING:
        raise PendingTransferNotPending(details={"pending_transfer": locked.pk, "status": locked.status})
    hold_release(locked.hold)
    locked.status, locked.ended_at = PendingStatus.CANCELLED, clock.now()
    locked.save(update_fields=["status", "ended_at"])
    audit_record(actor=actor, action="transfer.pending_cancel", obj=locked, payload={"quantity": locked.quantity})
    return locked


@service
def pending_transfers_execute(*, actor: Actor | None = None, limit: int = 500) -> int:
    """Carry out pending transfers whose delay has passed (scheduled every minute); return how many.

    A transfer of a suspended participant stays pending. Safe to run twice and on several workers:
    rows are locked and skipped by the others, and a carried-out transfer is no longer pending.
    """
    actor = actor or Actor.system("pending-transfers")
    due = lock_rows(
        PendingTransfer.objects.select_related("source", "destination", "asset", "hold", "participant")
        .filter(status=PendingStatus.PENDING, execute_after__lte=clock.now())
        .filter(~Q(participant__status=ParticipantStatus.SUSPENDED))
        .order_by("execute_after", "id")[:limit],
        skip_locked=True,
    )
    if not due:
        mark_unchanged()
        return 0
    for pending in due:
        txn, _ = journal_open(
            kind=TransactionKind.TRANSFER,
            actor=actor,
            idempotency_key=f"pending:{pending.pk}",
            request={"pending_transfer": pending.pk},
            memo=pending.memo,
            metadata={"pending_transfer": pending.pk, "requested_by": pending.requested_by_id},
        )
        posted = ledger_post(
            txn, [Leg(pending.asset, pending.source, pending.destination, pending.quantity, hold=pending.hold)]
        )
        pending.status, pending.ended_at, pending.transaction = PendingStatus.EXECUTED, clock.now(), txn
        pending.save(update_fields=["status", "ended_at", "transaction"])
        audit_record(
            actor=actor,
            action="transfer.pending_execute",
            obj=txn,
            payload={
                "pending_transfer": pending.pk,
                "source": pending.source.number,
                "destination": pending.destination.number,
                "asset": pending.asset.code,
                "quantity": pending.quantity,
                "ranges": [list(r) for r in posted.ranges[0]],
                "entry_digest": posted.digest,
            },
        )
    crash_point("pending.executed")
    return len(due)
