"""The four-eyes check the gated operations make: above ``GREENLEDGER["FOUR_EYES_THRESHOLD"]`` tonnes, outside
an approval being carried out, they raise ``ApprovalRequired`` and change nothing.

The operations (``ccer_issue``, ``cea_allocate``, and the compliance pre-allocation and true-up that allocate
through it) import this module; ``exchange.services.approvals`` files and decides the requests and carries
them out. It imports the operations, and they never import it, so the services form no import cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

from core.errors import Conflict
from core.errors import translatable as _
from exchange.models import ApprovalRequest

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
