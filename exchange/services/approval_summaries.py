"""What a four-eyes request says it will do: one sentence per operation, written when the request is filed, in
the registry's language (``core.i18n``), and kept with the request as its ``summary``.

The admin, the API and the services that file requests build their summaries here, so one operation reads
the same whichever way it was asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext_noop

from core.i18n import registry_text


def issue_summary(*, quantity: int, project: str, vintage: Any, reference: str = "") -> str:
    params = {"quantity": quantity, "project": project, "vintage": vintage, "reference": reference}
    if reference:
        return registry_text(
            gettext_noop("Issue %(quantity)s t of %(project)s vintage %(vintage)s (%(reference)s)"), params
        )
    return registry_text(gettext_noop("Issue %(quantity)s t of %(project)s vintage %(vintage)s"), params)


def allocate_summary(*, asset: str, quantities: Sequence[int]) -> str:
    return registry_text(
        gettext_noop("Allocate %(quantity)s t of %(asset)s to %(accounts)s accounts"),
        {"quantity": sum(quantities), "asset": asset, "accounts": len(quantities)},
    )


def preallocation_summary(year: int) -> str:
    return registry_text(gettext_noop("Pre-allocate compliance year %(year)s"), {"year": year})


def final_allocation_summary(year: int) -> str:
    return registry_text(gettext_noop("Final allocation of compliance year %(year)s"), {"year": year})


def true_up_summary(*, obligation: int, approved: int) -> str:
    return registry_text(
        gettext_noop("True up obligation %(obligation)s to %(approved)s t"),
        {"obligation": obligation, "approved": approved},
    )


def reduction_claim_summary(*, claim: int, quantity: int, project: str, vintage: Any) -> str:
    return registry_text(
        gettext_noop(
            "Reduction claim %(claim)s: issue %(quantity)s t of CCER to project %(project)s (vintage %(vintage)s)"
        ),
        {"claim": claim, "quantity": quantity, "project": project, "vintage": vintage},
    )


def non_trade_summary(*, transfer: int, quantity: int, asset: str, source: str, destination: str, basis: Any) -> str:
    return registry_text(
        gettext_noop(
            "Non-trade transfer %(transfer)s: %(quantity)s t of %(asset)s "
            "from %(source)s to %(destination)s (%(basis)s)"
        ),
        {
            "transfer": transfer,
            "quantity": quantity,
            "asset": asset,
            "source": source,
            "destination": destination,
            "basis": basis,
        },
    )


def demo_allocation_summary(asset: str) -> str:
    return registry_text(gettext_noop("Demo allocation of %(asset)s"), {"asset": asset})


def demo_waiting_allocation_summary() -> str:
    return registry_text(gettext_noop("Demo supplementary allocation of CEA-2025 (waiting for approval)"))
