"""Four eyes for issuance, allocation and pledge registration above ``GREENLEDGER["FOUR_EYES_THRESHOLD"]`` tonnes.

The operations themselves (``ccer_issue``, ``cea_allocate``, and the compliance pre-allocation and
true-up that allocate through it) call ``four_eyes_check`` (``exchange.services.four_eyes``): above the
threshold, outside an approval, they raise ``ApprovalRequired`` and change nothing. ``gated`` turns that
refusal into a pending ``ApprovalRequest`` holding the operation and its parameters. A second registry
user, not the requester, approves it: the operation then runs as requested, as the approver, inside the
approval's transaction, and the request records what it made. Refusals and failures leave the request pending.
Operations that file their own request at a review step (a non-trade transfer, a CCER reduction claim above
the threshold) are carried out through ``REVIEWED_OPERATIONS`` and told of a rejection through ``ON_REJECT``.

This module is the top of the services' import graph: it imports the operations it dispatches to, and no
service imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.errors import translatable as _
from core.i18n import registry_text
from exchange.locks import lock_row
from exchange.models import (
    Account,
    ApprovalOperation,
    ApprovalRequest,
    ApprovalStatus,
    Asset,
    ComplianceYear,
    Obligation,
    PledgeAmendment,
    PledgeLoan,
    Project,
)
from exchange.services.audit import audit_record, service
from exchange.services.ccer import reduction_claim_issue_approved, reduction_claim_rejected
from exchange.services.compliance import allocation_final_run, preallocation_run, true_up_apply
from exchange.services.four_eyes import ApprovalRequired, approval_file, carrying_out
from exchange.services.issuance import AllocationRow, ccer_issue, cea_allocate
from exchange.services.nontrade import non_trade_transfer_execute, non_trade_transfer_rejected
from exchange.services.pledges import pledge_register
from exchange.services.pledges.amendments import pledge_amendment_register
from exchange.services.pledges.common import asset_label

T = TypeVar("T")


class SameApprover(Forbidden):
    code = "four_eyes_same_user"
    default_message = _("A request can't be approved by the user who made it.")


class ApprovalNotPending(Conflict):
    code = "approval_not_pending"
    default_message = _("The request has been decided already.")


class ApprovalNotFound(NotFound):
    code = "approval_not_found"
    default_message = _("No such approval request.")


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)


# --- the operations that can wait for approval, rebuilt from their JSON parameters ---------------------
def _issue(actor: Actor, p: dict[str, Any]) -> str:
    issuance = ccer_issue(
        actor=actor,
        project=Project.objects.get(code=p["project"]),
        vintage=p["vintage"],
        monitoring_start=date.fromisoformat(p["monitoring_start"]),
        monitoring_end=date.fromisoformat(p["monitoring_end"]),
        quantity=p["quantity"],
        external_reference=p["external_reference"],
    )
    return f"transaction:{issuance.transaction_id}"


def _allocate(actor: Actor, p: dict[str, Any]) -> str:
    accounts = Account.objects.select_related("participant").in_bulk([n for n, _ in p["rows"]], field_name="number")
    txn = cea_allocate(
        actor=actor,
        asset=Asset.objects.get(code=p["asset"]),
        rows=[AllocationRow(account=accounts[n], quantity=q, line=i) for i, (n, q) in enumerate(p["rows"], start=1)],
        idempotency_key=p.get("idempotency_key"),
        memo=p.get("memo", ""),
    )
    return f"transaction:{txn.pk}"


def _preallocate(actor: Actor, p: dict[str, Any]) -> str:
    result = preallocation_run(actor=actor, year=ComplianceYear.objects.get(pk=p["year"]))
    return f"transaction:{result.transaction.pk}" if result.transaction else "nothing"


def _true_up(actor: Actor, p: dict[str, Any]) -> str:
    entry = true_up_apply(
        actor=actor,
        obligation=Obligation.objects.get(pk=p["obligation"]),
        approved=p["approved"],
        idempotency_key=p.get("idempotency_key"),
    )
    return f"allocation_entry:{entry.pk}"


def _non_trade(actor: Actor, p: dict[str, Any], approval: ApprovalRequest) -> str:
    transfer = non_trade_transfer_execute(actor=actor, approval=approval)
    return f"transaction:{transfer.transaction_id}"


def _claim_issue(actor: Actor, p: dict[str, Any], approval: ApprovalRequest) -> str:
    claim = reduction_claim_issue_approved(actor=actor, approval=approval)
    assert claim.issuance is not None
    return f"transaction:{claim.issuance.transaction_id}"


def _allocate_final(actor: Actor, p: dict[str, Any]) -> str:
    result = allocation_final_run(
        actor=actor, year=ComplianceYear.objects.get(pk=p["year"]), today=date.fromisoformat(p["today"])
    )
    return f"final_allocation:{result.year}:{len(result.entries)} entries"


def _register_pledge(actor: Actor, p: dict[str, Any]) -> str:
    loan = pledge_register(actor=actor, loan=PledgeLoan.objects.get(pk=p["pledge"]))
    return f"pledge:{loan.pk}"


def _register_pledge_amendment(actor: Actor, p: dict[str, Any]) -> str:
    amendment = pledge_amendment_register(actor=actor, amendment=PledgeAmendment.objects.get(pk=p["amendment"]))
    return f"pledge_amendment:{amendment.pk}"


OPERATIONS: dict[str, Callable[[Actor, dict[str, Any]], str]] = {
    ApprovalOperation.CCER_ISSUE: _issue,
    ApprovalOperation.CEA_ALLOCATE: _allocate,
    ApprovalOperation.PREALLOCATION: _preallocate,
    ApprovalOperation.TRUE_UP: _true_up,
    ApprovalOperation.FINAL_ALLOCATION: _allocate_final,
    ApprovalOperation.PLEDGE_REGISTER: _register_pledge,
    ApprovalOperation.PLEDGE_AMENDMENT_REGISTER: _register_pledge_amendment,
}
# Operations whose request is filed by their own review step (not ``approval_request``): carried out with the
# approval itself, and told when it is rejected (a non-trade transfer releases its held units).
REVIEWED_OPERATIONS: dict[str, Callable[[Actor, dict[str, Any], ApprovalRequest], str]] = {
    ApprovalOperation.NON_TRADE_TRANSFER: _non_trade,
    ApprovalOperation.CCER_CLAIM_ISSUE: _claim_issue,
}
ON_REJECT: dict[str, Callable[[Actor, ApprovalRequest, str], Any]] = {
    ApprovalOperation.NON_TRADE_TRANSFER: lambda actor, approval, reason: non_trade_transfer_rejected(
        actor=actor, approval=approval, reason=reason
    ),
    ApprovalOperation.CCER_CLAIM_ISSUE: lambda actor, approval, reason: reduction_claim_rejected(
        actor=actor, approval=approval, reason=reason
    ),
}


# --- requesting and deciding ---------------------------------------------------------------------------
def gated(
    *, actor: Actor, operation: str, params: dict[str, Any], summary: str, call: Callable[[], T]
) -> T | ApprovalRequest:
    """Run ``call``; if it needs four eyes, file an approval request for it instead and return that."""
    try:
        return call()
    except ApprovalRequired as needed:
        return approval_request(
            actor=actor, operation=operation, params=params, quantity=needed.quantity, summary=summary
        )


def pledge_register_or_file(*, actor: Actor, loan: PledgeLoan) -> PledgeLoan | ApprovalRequest:
    """The registry registers a joint pledge application; above the four-eyes threshold the registration is
    filed for a second registry user's approval instead (the request is returned). The API, the admin and
    the CLI all register through here."""
    return gated(
        actor=actor,
        operation=ApprovalOperation.PLEDGE_REGISTER,
        params={"pledge": loan.pk},
        summary=registry_text(
            gettext_noop("Register pledge %(pledge)s: %(quantity)s t of %(asset)s"),
            {"pledge": loan.pk, "quantity": loan.quantity, "asset": asset_label(loan)},
        ),
        call=lambda: pledge_register(actor=actor, loan=loan),
    )


def pledge_amendment_register_or_file(*, actor: Actor, amendment: PledgeAmendment) -> PledgeAmendment | ApprovalRequest:
    """The registry registers a jointly applied pledge amendment, or files it for four eyes above the threshold."""
    return gated(
        actor=actor,
        operation=ApprovalOperation.PLEDGE_AMENDMENT_REGISTER,
        params={"amendment": amendment.pk},
        summary=registry_text(
            gettext_noop("Register amendment %(amendment)s of pledge %(pledge)s: %(kind)s, %(quantity)s t"),
            {
                "amendment": amendment.pk,
                "pledge": amendment.loan_id,
                "kind": amendment.get_kind_display(),
                "quantity": amendment.quantity,
            },
        ),
        call=lambda: pledge_amendment_register(actor=actor, amendment=amendment),
    )


@service
def approval_request(
    *, actor: Actor, operation: str, params: dict[str, Any], quantity: int, summary: str
) -> ApprovalRequest:
    """File an operation for a second registry user's approval.

    A keyed request files once through its Idempotency-Key (``exchange.services.idempotency``), claimed by
    the endpoint or the command that calls this; parameters may carry an ``idempotency_key`` that the
    approved operation claims when it runs.
    """
    _require_registry(actor)
    if operation not in OPERATIONS:
        raise InvalidInput(_("Unknown operation %(operation)r.") % {"operation": operation})
    return approval_file(actor=actor, operation=operation, params=params, quantity=quantity, summary=summary)


def _pending(actor: Actor, approval: ApprovalRequest) -> ApprovalRequest:
    _require_registry(actor)
    locked = lock_row(ApprovalRequest.objects.filter(pk=approval.pk))
    if locked is None:
        raise ApprovalNotFound(details={"approval": approval.pk})
    if locked.status != ApprovalStatus.PENDING:
        raise ApprovalNotPending(details={"approval": locked.pk, "status": locked.status})
    if locked.requested_by_id == actor.user_id:
        raise SameApprover(details={"approval": locked.pk})
    return locked


@service
def approval_approve(*, actor: Actor, approval: ApprovalRequest) -> ApprovalRequest:
    """Approve a pending request (a registry user other than the requester) and carry it out now."""
    locked = _pending(actor, approval)
    with carrying_out(locked):
        if locked.operation in REVIEWED_OPERATIONS:
            result = REVIEWED_OPERATIONS[locked.operation](actor, locked.params, locked)
        else:
            result = OPERATIONS[locked.operation](actor, locked.params)
    locked.status, locked.decided_by_id, locked.decided_at, locked.result = (
        ApprovalStatus.APPROVED,
        actor.user_id,
        timezone.now(),
        result,
    )
    locked.save(update_fields=["status", "decided_by", "decided_at", "result"])
    audit_record(
        actor=actor,
        action="approval.approve",
        obj=locked,
        payload={
            "operation": locked.operation,
            "requested_by": locked.requested_by_id,
            "quantity": locked.quantity,
            "result": result,
        },
    )
    return locked


@service
def approval_reject(*, actor: Actor, approval: ApprovalRequest, reason: str) -> ApprovalRequest:
    """Reject a pending request (a registry user other than the requester); nothing is carried out."""
    locked = _pending(actor, approval)
    if not reason.strip():
        raise InvalidInput(gettext("A rejection gives its reason."))
    locked.status, locked.decided_by_id, locked.decided_at, locked.reason = (
        ApprovalStatus.REJECTED,
        actor.user_id,
        timezone.now(),
        reason.strip()[:500],
    )
    locked.save(update_fields=["status", "decided_by", "decided_at", "reason"])
    if locked.operation in ON_REJECT:
        ON_REJECT[locked.operation](actor, locked, locked.reason)
    audit_record(
        actor=actor,
        action="approval.reject",
        obj=locked,
        payload={"operation": locked.operation, "requested_by": locked.requested_by_id, "reason": locked.reason},
    )
    return locked


def user_label(user_id: int | None) -> str:
    if user_id is None:
        return ""
    user = get_user_model().objects.filter(pk=user_id).first()
    return user.get_username() if user else str(user_id)
