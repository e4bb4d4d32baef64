"""Celery tasks: thin wrappers that call services. Each is safe to run twice and acknowledged late,
so a worker killed mid-task leaves the message to be run again."""

from __future__ import annotations

import logging

from celery import shared_task

from exchange.selectors.reconcile import reconcile
from exchange.services.compliance import compliance_deadlines_run
from exchange.services.sealing import audit_seal

logger = logging.getLogger("greenledger.tasks")


@shared_task(name="exchange.audit_seal", acks_late=True, ignore_result=True)
def audit_seal_task() -> int:
    """Seal committed audit events into checkpoints (scheduled every minute; safe to overlap)."""
    return sum(c.count for c in audit_seal())


@shared_task(name="exchange.reconcile", acks_late=True, ignore_result=True)
def reconcile_task() -> int:
    """Check the ledger invariants and log every violation (scheduled nightly)."""
    violations = list(reconcile())
    for violation in violations:
        logger.error("ledger invariant violated", extra={"invariant": violation.invariant, "detail": violation.message})
    return len(violations)


@shared_task(name="exchange.compliance_deadlines", acks_late=True, ignore_result=True)
def compliance_deadlines_task() -> list[int]:
    """Assess every compliance year whose deadline has passed (scheduled daily; an assessed year is
    closed, so running it twice changes nothing)."""
    return compliance_deadlines_run()
