"""Non-trade transfers (非交易过户): how units reach another participant where the market's rulebook says
``participant_transfers = non_trade_only`` (China's markets: MEE Order 19 art. 22, Decree 775, the national
registration rules of 2021).

1. ``non_trade_transfer_apply``: the holder (or the registry, for a court, heir or successor) applies with a
   legal-basis code and the supporting document's SHA-256. The units are held at once (exact serials if
   named), by a hold of kind ``non_trade_transfer``.
2. ``non_trade_transfer_review``: a first registry officer reviews it and files it for a second officer's
   approval, an ``ApprovalRequest`` of operation ``transfer.non_trade`` (``exchange.services.approvals``).
   ``non_trade_transfer_reject`` refuses it at this step instead, releasing the hold.
3. The second officer approves the request (``approval_approve``, which calls
   ``non_trade_transfer_execute``: the units move from the hold through the posting path) or rejects it
   (``approval_reject``, which calls ``non_trade_transfer_rejected``: the hold is released). The approver is
   never the reviewer: ``approval_approve`` refuses it, and so do two CHECK constraints.
"""

from __future__ import annotations

from typing import cast

from django.utils.translation import gettext_lazy, gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import Forbidden, NotFound
from core.i18n import registry_text
from core.limits import check_quantity
from exchange.errors import AssetNotTransferable, InvalidDestination, InvalidState, SameAccount
from exchange.locks import lock_row
from exchange.models import (
    Account,
    AccountKind,
    ApprovalOperation,
    ApprovalRequest,
    Asset,
    HoldKind,
    LegalBasis,
    NonTradeStatus,
    NonTradeTransfer,
    TransactionKind,
)
from exchange.selectors.accounts import may_move_from
from exchange.services.approval_summaries import non_trade_summary
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.four_eyes import approval_file
from exchange.services.freezes import ValueRuleBroken, check_sha256
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import Leg, hold_place, hold_release, journal_open, ledger_post


def _(text: str) -> str:
    """``text`` marked for translation, translated when shown (a lazy string typed as the ``str`` it becomes)."""
    return cast(str, gettext_lazy(text))


class NonTradeTransferNotFound(NotFound):
    code = "non_trade_transfer_not_found"
    default_message = _("No such non-trade transfer, or not yours.")


class NonTradeStepRefused(InvalidState):
    code = "non_trade_step_refused"
    default_message = _("The non-trade transfer is not at the step this needs.")


class NonTradeSameOfficer(Forbidden):
    code = "four_eyes_same_user"
    default_message = _("A second registry officer, not the reviewer, decides a non-trade transfer.")


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)


def _is_registry(actor: Actor) -> bool:
    return actor.is_kind(ParticipantKind.REGISTRY)


@service
@idempotent_service("non_trade_transfer_apply")
def non_trade_transfer_apply(
    *,
    actor: Actor,
    source: Account,
    destination: Account,
    asset: Asset,
    quantity: int,
    legal_basis: str,
    document_sha256: str,
    legal_basis_text: str = "",
    memo: str = "",
    serials: tuple[int, int] | None = None,
    idempotency_key: str | None = None,
) -> NonTradeTransfer:
    """Apply for a non-trade transfer: the holder of ``source``, or the registry on a court's, heir's or
    successor's behalf. The units (``serials`` exactly, or the lowest available) are held at once."""
    actor.require_can_act()
    if not (_is_registry(actor) or may_move_from(actor, source)):
        raise NonTradeTransferNotFound(_("You act for another participant."), details={"account": source.number})
    check_quantity(quantity)
    if legal_basis not in LegalBasis.values:
        raise ValueRuleBroken(
            _("Unknown legal basis."), details={"legal_basis": legal_basis, "allowed": list(LegalBasis.values)}
        )
    legal_basis_text = (legal_basis_text or "").strip()
    if legal_basis == LegalBasis.OTHER and not legal_basis_text:
        raise ValueRuleBroken(_("A legal basis of 'other' is stated in words."), details={"legal_basis": legal_basis})
    document_sha256 = check_sha256(document_sha256)
    if source.pk == destination.pk:
        raise SameAccount(details={"account": source.number})
    if source.kind != AccountKind.HOLDING or destination.kind != AccountKind.HOLDING:
        raise InvalidDestination(
            _("A non-trade transfer goes from one holding account to another."),
            details={"source": source.number, "destination": destination.number},
        )
    if source.participant_id == destination.participant_id:
        raise InvalidDestination(
            _("Between a participant's own accounts units move at once; use a transfer."),
            details={"destination": destination.number},
        )
    if not asset.serialised:
        raise AssetNotTransferable(details={"asset": asset.code})
    if serials is not None and (serials[0] < 1 or serials[1] - serials[0] + 1 != quantity):
        raise ValueRuleBroken(_("The serial range does not match the quantity."), details={"serials": list(serials)})
    now = clock.now()
    hold = hold_place(
        account=source,
        asset=asset,
        quantity=quantity,
        kind=HoldKind.NON_TRADE_TRANSFER,
        reference=f"non-trade:{source.pk}:{now.timestamp()}"[:100],
        serials=serials,
    )
    transfer = NonTradeTransfer.objects.create(
        participant_id=source.participant_id or 0,  # a holding account always has its participant
        source=source,
        destination=destination,
        asset=asset,
        quantity=quantity,
        legal_basis=legal_basis,
        legal_basis_text=legal_basis_text[:500],
        document_sha256=document_sha256,
        memo=(memo or "")[:500],
        hold=hold,
        applied_by_id=actor.member_user_id,
        applied_at=now,
    )
    audit_record(
        actor=actor,
        action="transfer.non_trade_apply",
        obj=transfer,
        payload={
            "source": source.number,
            "destination": destination.number,
            "asset": asset.code,
            "quantity": quantity,
            "serials": list(serials) if serials else None,
            "legal_basis": legal_basis,
            "legal_basis_text": transfer.legal_basis_text,
            "document_sha256": document_sha256,
            "memo": transfer.memo,
            "hold": hold.pk,
            "ranges": [list(r) for r in hold.blocks.order_by("first").values_list("first", "last")],
        },
        at=now,
    )
    return transfer


def _lock(transfer: NonTradeTransfer) -> NonTradeTransfer:
    locked = lock_row(
        NonTradeTransfer.objects.select_related("source", "destination", "asset", "hold").filter(pk=transfer.pk)
    )
    if locked is None:
        raise NonTradeTransferNotFound(details={"non_trade_transfer": transfer.pk})
    return locked


@service
def non_trade_transfer_review(*, actor: Actor, transfer: NonTradeTransfer, note: str = "") -> NonTradeTransfer:
    """First officer: the application is complete and lawful; file it for a second officer's approval."""
    _require_registry(actor)
    locked = _lock(transfer)
    if locked.status == NonTradeStatus.REVIEWED and locked.reviewed_by_id == actor.user_id:
        mark_unchanged()
        return locked
    if locked.status != NonTradeStatus.APPLIED:
        raise NonTradeStepRefused(details={"non_trade_transfer": locked.pk, "status": locked.status})
    summary = non_trade_summary(
        transfer=locked.pk,
        quantity=locked.quantity,
        asset=locked.asset.code,
        source=locked.source.number,
        destination=locked.destination.number,
        basis=locked.get_legal_basis_display(),
    )
    approval = approval_file(
        actor=actor,
        operation=ApprovalOperation.NON_TRADE_TRANSFER,
        params={"non_trade_transfer": locked.pk},
        quantity=locked.quantity,
        summary=summary,
    )
    locked.status, locked.reviewed_by_id, locked.approval = NonTradeStatus.REVIEWED, actor.user_id, approval
    locked.save(update_fields=["status", "reviewed_by", "approval"])
    audit_record(
        actor=actor,
        action="transfer.non_trade_review",
        obj=locked,
        payload={"approval": approval.pk, "note": (note or "")[:500]},
    )
    return locked


@service
def non_trade_transfer_reject(*, actor: Actor, transfer: NonTradeTransfer, reason: str) -> NonTradeTransfer:
    """A registry officer refuses an application before review: the held units are available again. (Once
    reviewed, the second officer rejects its approval request, which comes to the same.)"""
    _require_registry(actor)
    if not (reason or "").strip():
        raise ValueRuleBroken(_("A rejection gives its reason."))
    locked = _lock(transfer)
    if locked.status != NonTradeStatus.APPLIED:
        raise NonTradeStepRefused(details={"non_trade_transfer": locked.pk, "status": locked.status})
    return _rejected(actor, locked, reason)


def _rejected(actor: Actor, locked: NonTradeTransfer, reason: str) -> NonTradeTransfer:
    released = hold_release(locked.hold)
    locked.status, locked.decided_by_id, locked.decided_at = NonTradeStatus.REJECTED, actor.user_id, clock.now()
    locked.reason = reason.strip()[:500]
    locked.save(update_fields=["status", "decided_by", "decided_at", "reason"])
    audit_record(
        actor=actor,
        action="transfer.non_trade_reject",
        obj=locked,
        payload={
            "source": locked.source.number,
            "destination": locked.destination.number,
            "asset": locked.asset.code,
            "quantity": locked.quantity,
            "reason": locked.reason,
            "released": released,
            "approval": locked.approval_id,
        },
    )
    return locked


def _for_approval(approval: ApprovalRequest) -> NonTradeTransfer:
    transfer = NonTradeTransfer.objects.filter(pk=approval.params.get("non_trade_transfer")).first()
    if transfer is None:
        raise NonTradeTransferNotFound(details={"approval": approval.pk})
    locked = _lock(transfer)
    if locked.status != NonTradeStatus.REVIEWED or locked.approval_id != approval.pk:
        raise NonTradeStepRefused(details={"non_trade_transfer": locked.pk, "status": locked.status})
    return locked


def non_trade_transfer_execute(*, actor: Actor, approval: ApprovalRequest) -> NonTradeTransfer:
    """Carry out a reviewed transfer as its second officer approves it (called by ``approval_approve``, in
    its transaction): the held units move to the destination through the posting path."""
    _require_registry(actor)
    locked = _for_approval(approval)
    if locked.reviewed_by_id == actor.user_id:
        raise NonTradeSameOfficer(details={"non_trade_transfer": locked.pk})
    request = {"non_trade_transfer": locked.pk, "approval": approval.pk}
    txn, _replayed = journal_open(
        kind=TransactionKind.TRANSFER,
        actor=actor,
        idempotency_key=f"non-trade:{locked.pk}",
        request=request,
        memo=registry_text(gettext_noop("Non-trade transfer (%(basis)s)"), {"basis": locked.get_legal_basis_display()}),
        metadata={"non_trade_transfer": locked.pk, "legal_basis": locked.legal_basis},
    )
    posted = ledger_post(
        txn, [Leg(locked.asset, locked.source, locked.destination, locked.hold.remaining, hold=locked.hold)]
    )
    locked.status, locked.decided_by_id, locked.decided_at = NonTradeStatus.APPROVED, actor.user_id, clock.now()
    locked.transaction = txn
    locked.save(update_fields=["status", "decided_by", "decided_at", "transaction"])
    audit_record(
        actor=actor,
        action="transfer.non_trade_execute",
        obj=txn,
        payload={
            **request,
            "source": locked.source.number,
            "destination": locked.destination.number,
            "asset": locked.asset.code,
            "quantity": locked.quantity,
            "legal_basis": locked.legal_basis,
            "document_sha256": locked.document_sha256,
            "reviewed_by": locked.reviewed_by_id,
            "ranges": [list(r) for r in posted.ranges[0]],
            "entry_digest": posted.digest,
        },
    )
    return locked


def non_trade_transfer_rejected(*, actor: Actor, approval: ApprovalRequest, reason: str) -> NonTradeTransfer:
    """The second officer rejected the approval request (called by ``approval_reject``): release the units."""
    return _rejected(actor, _for_approval(approval), reason)


__all__ = [
    "NonTradeSameOfficer",
    "NonTradeStepRefused",
    "NonTradeTransferNotFound",
    "non_trade_transfer_apply",
    "non_trade_transfer_execute",
    "non_trade_transfer_reject",
    "non_trade_transfer_rejected",
    "non_trade_transfer_review",
]
