"""The four-eyes check the gated operations make: above ``GREENLEDGER["FOUR_EYES_THRESHOLD"]`` tonnes, outside
an approval being carried out, they raise ``ApprovalRequired`` and change nothing.

The operations (``ccer_issue``, ``cea_allocate``, and the compliance pre-allocation and true-up that allocate
through it) import this module; ``exchange.services.approvals`` decides the requests and carries them out. It
imports the operations, and they never import it, so the services form no import cycle.

``approval_file`` is the one way a request is filed (recorded, audited as ``approval.request``, which gives the
requester its ``approval.waiting`` event, and the requester told): ``approval_request`` and the services that
file their own at a review step (a non-trade transfer, a CCER reduction claim) all call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

from accounts.actors import Actor
from core.errors import Conflict
from core.errors import translatable as _
from core.i18n import registry_language
from exchange.models import ApprovalRequest, NoticeKind
from exchange.services.audit import audit_record
from exchange.services.notices import notice_add

_approving: ContextVar[ApprovalRequest | None] = ContextVar("greenledger_approving", default=None)


class ApprovalRequired(Conflict):
    code = "approval_required"
    default_message = _("This needs a second registry user's approval; submit it as an approval request.")

    def __init__(self, quantity: int, threshold: int) -> None:
        super().__init__(
            f"{quantity} t is above the four-eyes threshold of {threshold} t.",
            details={"quantity": quantity, "threshold": threshold},
        )
        self.quantity = quantity


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
def carrying_out(approval: ApprovalRequest) -> Iterator[None]:
    """Within the block, the four-eyes check lets through what ``approval`` covers."""
    token = _approving.set(approval)
    try:
        yield
    finally:
        _approving.reset(token)


def approval_file(
    *, actor: Actor, operation: str, params: dict[str, Any], quantity: int, summary: str
) -> ApprovalRequest:
    """File an operation for a second registry user's approval: the request, its ``approval.request`` audit
    event (the requester's ``approval.waiting`` event) and the notice to the requester. The caller has
    checked the actor and the operation, in its transaction."""
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
    if request.requested_participant_id is not None:
        _notify_requester(request, quantity)
    return request


@registry_language()
def _notify_requester(request: ApprovalRequest, quantity: int) -> None:
    """The notice that the request waits, written in the registry's language (core.i18n) like its summary."""
    notice_add(
        recipients=[request.requested_participant],
        kind=NoticeKind.APPROVAL_WAITING,
        subject=gettext("Approval request %(id)s is waiting for a second registry user") % {"id": request.pk},
        body=gettext(
            "%(summary)s (%(quantity)s t), requested by %(user)s. "
            "Approve or reject it in the admin or with POST /api/v1/approvals/%(id)s/approve."
        )
        % {
            "summary": request.summary,
            "quantity": quantity,
            "user": request.requested_by.get_username() if request.requested_by_id else "",
            "id": request.pk,
        },
        obj=("approval_request", request.pk),
    )
