"""Four eyes for issuance and allocation above ``GREENLEDGER["FOUR_EYES_THRESHOLD"]`` tonnes.

The operations themselves (``ccer_issue``, ``cea_allocate``, and the compliance pre-allocation and
true-up that allocate through it) call ``four_eyes_check``: above the threshold, outside an approval,
they raise ``ApprovalRequired`` and change nothing. ``gated`` turns that refusal into a pending
``ApprovalRequest`` holding the operation and its parameters. A second registry user, not the requester,
approves it: the operation then runs as requested, as the approver, inside the approval's transaction,
and the request records what it made. Refusals and failures leave the request pending.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import ParticipantKind
from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from exchange.models import ApprovalOperation, ApprovalRequest, ApprovalStatus
from exchange.services.audit import audit_record, service

T = TypeVar("T")

_approving: ContextVar[ApprovalRequest | None] = ContextVar("greenledger_approving", default=None)


class ApprovalRequired(Conflict):
    code = "approval_required"
    default_message = "This needs a second registry user's approval; submit it as an approval request."

    def __init__(self, quantity: int, threshold: int) -> None:
        super().__init__(
            f"{quantity} t is above the four-eyes threshold of {threshold} t.",
            details={"quantity": quantity, "threshold": threshold},
        )
        self.quantity = quantity


class SameApprover(Forbidden):
    code = "four_eyes_same_user"
    default_message = "A request can't be approved by the user who made it."


class ApprovalNotPending(Conflict):
    code = "approval_not_pending"
    default_message = "The request has been decided already."


class ApprovalNotFound(NotFound):
    code = "approval_not_found"
    default_message = "No such approval request."


def threshold() -> int:
    return int(settings.GREENLEDGER["FOUR_EYES_THRESHOLD"])


def four_eyes_check(quantity: int) -> None:
    """Refuse ``quantity`` above the threshold unless an approval covering it is being carried out."""
    limit = threshold()
    if quantity <= limit:
        return
    approval = _approving.get()
    if approval is None or quantity > approval.quantity:
        raise ApprovalRequired(quantity, limit)


@contextmanager
def _carrying_out(approval: ApprovalRequest) -> Iterator[None]:
    token = _approving.set(approval)
    try:
        yield
    finally:
        _approving.reset(token)


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)


# --- the operations that can wait for approval, rebuilt from their JSON parameters ---------------------
def _issue(actor: Actor, p: dict[str, Any]) -> str:
    from exchange.models import Project
    from exchange.services.issuance import ccer_issue

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
    from exchange.models import Account, Asset
    from exchange.services.issuance import AllocationRow, cea_allocate

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
    from exchange.models import ComplianceYear
    from exchange.services.compliance import preallocation_run

    result = preallocation_run(actor=actor, year=ComplianceYear.objects.get(pk=p["year"]))
    return f"transaction:{result.transaction.pk}" if result.transaction else "nothing"


def _true_up(actor: Actor, p: dict[str, Any]) -> str:
    from exchange.models import Obligation
    from exchange.services.compliance import true_up_apply

    entry = true_up_apply(
        actor=actor,
        obligation=Obligation.objects.get(pk=p["obligation"]),
        approved=p["approved"],
        idempotency_key=p.get("idempotency_key"),
    )
    return f"allocation_entry:{entry.pk}"


OPERATIONS: dict[str, Callable[[Actor, dict[str, Any]], str]] = {
    ApprovalOperation.CCER_ISSUE: _issue,
    ApprovalOperation.CEA_ALLOCATE: _allocate,
    ApprovalOperation.PREALLOCATION: _preallocate,
    ApprovalOperation.TRUE_UP: _true_up,
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
        raise InvalidInput(f"Unknown operation {operation!r}.")
    request = ApprovalRequest.objects.create(
        operation=operation,
        params=params,
        quantity=quantity,
        summary=summary[:300],
        requested_by_id=actor.member_user_id,
        requested_participant_id=actor.member_participant_id,
        requested_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="approval.request",
        obj=request,
        payload={"operation": operation, "params": params, "quantity": quantity, "summary": request.summary},
    )
    return request


def _pending(actor: Actor, approval: ApprovalRequest) -> ApprovalRequest:
    _require_registry(actor)
    locked = ApprovalRequest.objects.select_for_update().filter(pk=approval.pk).first()
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
    with _carrying_out(locked):
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
        raise InvalidInput("A rejection gives its reason.")
    locked.status, locked.decided_by_id, locked.decided_at, locked.reason = (
        ApprovalStatus.REJECTED,
        actor.user_id,
        timezone.now(),
        reason.strip()[:500],
    )
    locked.save(update_fields=["status", "decided_by", "decided_at", "reason"])
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
