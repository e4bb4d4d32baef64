"""Celery tasks: thin wrappers that call services. Each is safe to run twice and acknowledged late,
so a worker killed mid-task leaves the message to be run again (the broker hands it to another worker
after its visibility timeout). A task that meets a transient database or broker error (the connection
lost, the server restarting) is retried with exponential backoff and jitter; the services roll back
whole, so a retry starts from a clean state."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.clock import trading_day
from exchange import schedule
from exchange.selectors.reconcile import reconcile
from exchange.services.compliance import compliance_deadlines_run
from exchange.services.day_close import day_close, listed_assets
from exchange.services.events import events_forget
from exchange.services.idempotency import idempotent_requests_forget
from exchange.services.notices import notices_send
from exchange.services.pledges import pledge_sales_complete, pledges_value
from exchange.services.sealing import audit_seal
from exchange.services.session_close import orders_cancel_at_close
from exchange.services.settlement import settlement_run
from exchange.services.trust import pending_transfers_execute
from exchange.services.webhooks import webhooks_deliver

logger = logging.getLogger("greenledger.tasks")

F = TypeVar("F", bound=Callable[..., Any])


def completes(job: str) -> Callable[[F], F]:
    """Record each successful scheduled run (no arguments, as beat sends it) of a job at fixed times, for
    beat's catch-up (``exchange.beat``); a run for another day, or on demand with a key, records nothing."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            when = schedule.job(job).when
            scheduled = not args and not kwargs
            due_at = schedule.last_due(when, timezone.now()) if scheduled and isinstance(when, schedule.Cron) else None
            result = func(*args, **kwargs)
            if due_at is not None:
                schedule.run_completed(job, due_at)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate

TRANSIENT_ERRORS = (OperationalError, InterfaceError, BrokerOperationalError, RedisConnectionError, RedisTimeoutError)
# Backoff 1, 2, 4 ... 300 s (with jitter) for about an hour of outage, then the error is logged and the
# job waits for its next time (or for beat's catch-up when it was a scheduled run).
RETRY: dict[str, Any] = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 20,
}


@shared_task(name="exchange.audit_seal", **RETRY)
def audit_seal_task() -> int:
    """Seal committed audit events into checkpoints (scheduled every minute; safe to overlap)."""
    return sum(c.count for c in audit_seal())


@shared_task(name="exchange.reconcile", **RETRY)
@completes("reconcile-nightly")
def reconcile_task() -> int:
    """Check the ledger invariants and log every violation (scheduled nightly)."""
    violations = list(reconcile())
    for violation in violations:
        logger.error("ledger invariant violated", extra={"invariant": violation.invariant, "detail": violation.message})
    return len(violations)


@shared_task(name="exchange.orders_cancel_at_close", **RETRY)
def orders_cancel_at_close_task() -> int:
    """Cancel the open orders whose session has ended (scheduled every minute; each asset has its sessions)."""
    return orders_cancel_at_close()


@shared_task(name="exchange.day_close", **RETRY)
@completes("day-close")
def day_close_task(day: str | None = None) -> int:
    """Record each listed asset's close for the trading day (after 15:00). Idempotent."""
    when = date.fromisoformat(day) if day else trading_day()
    return len([day_close(asset=asset, day=when) for asset in listed_assets()])


@shared_task(name="exchange.settlement_run", **RETRY)
@completes("settlement")
def settlement_run_task(idempotency_key: str | None = None) -> int:
    """Settle every unsettled trade (after the close, or on demand). Each trade settles exactly once."""
    return settlement_run(idempotency_key=idempotency_key).trades_count


@shared_task(name="exchange.compliance_deadlines", **RETRY)
@completes("compliance-deadlines")
def compliance_deadlines_task() -> list[int]:
    """Assess every compliance year whose deadline has passed (scheduled daily; an assessed year is
    closed, so running it twice changes nothing)."""
    return compliance_deadlines_run()


@shared_task(name="exchange.pledges_value", **RETRY)
@completes("pledge-valuation")
def pledges_value_task(day: str | None = None) -> int:
    """After the close and settlement: complete ended sales on enforcement, then value every registered
    pledge at the close (one valuation per pledge per day; margin calls once per breach). Idempotent."""
    pledge_sales_complete()
    return pledges_value(day=date.fromisoformat(day) if day else trading_day())


@shared_task(name="exchange.pending_transfers_execute", **RETRY)
def pending_transfers_execute_task() -> int:
    """Carry out pending transfers whose delay has passed (every minute). Each is carried out once."""
    return pending_transfers_execute()


@shared_task(name="exchange.idempotent_requests_forget", **RETRY)
@completes("idempotency-forget")
def idempotent_requests_forget_task() -> int:
    """Forget the answers kept for keyed requests past the retention period (daily). Safe to run twice."""
    return idempotent_requests_forget()


@shared_task(name="exchange.notices_send", **RETRY)
def notices_send_task() -> int:
    """Send the notices not yet delivered whose time has come (every minute); each is marked delivered
    only once the mail server has accepted it, and a failed one is retried with backoff."""
    return notices_send()


@shared_task(name="exchange.webhooks_deliver", **RETRY)
def webhooks_deliver_task() -> int:
    """Send the webhook deliveries that are due, in order per endpoint (every few seconds; safe to overlap)."""
    return webhooks_deliver()


@shared_task(name="exchange.events_forget", **RETRY)
def events_forget_task() -> int:
    """Forget participant events older than EVENTS_RETENTION_DAYS."""
    return events_forget()
