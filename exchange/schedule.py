"""Every periodic job, in one list, and the one step that writes it into beat's tables.

This module owns the rows of django-celery-beat's ``PeriodicTask`` for the jobs it lists: ``sync()``
creates a missing job, puts a changed task, time or description back to what is written here, and
deletes the jobs this module once had and dropped (``RETIRED``). It is idempotent (a second run changes
nothing) and runs after every ``migrate`` (a ``post_migrate`` hook, so a deploy, ``make run``, the test
database and a test's flush all get it) and on demand as ``manage.py sync_schedule``. The one choice
staff keep from the admin is ``enabled``: a job they disabled stays disabled. Change a job's time here,
not in the admin: the next sync puts it back.

Times are China time. Every job is safe to run twice (see docs/operations.md, "The scheduled jobs").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

TIMEZONE = "Asia/Shanghai"
WEEKDAYS = "1-5"
EVERY_DAY = "*"


@dataclass(frozen=True)
class Cron:
    minute: str
    hour: str
    day_of_week: str = EVERY_DAY

    def describe(self) -> str:
        days = {EVERY_DAY: "daily", WEEKDAYS: "Mon-Fri"}.get(self.day_of_week, f"days {self.day_of_week}")
        if self.minute == "*" and self.hour == "*":
            return "every minute"
        return f"{int(self.hour):02d}:{int(self.minute):02d}, {days}"


@dataclass(frozen=True)
class Every:
    seconds: int

    def describe(self) -> str:
        return f"every {self.seconds} s"


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    when: Cron | Every
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)


JOBS: tuple[Job, ...] = (
    Job("audit-seal", "exchange.audit_seal", Every(60), "Seal committed audit events into checkpoints."),
    Job(
        "pending-transfers",
        "exchange.pending_transfers_execute",
        Every(60),
        "Carry out transfers to untrusted accounts once their delay has passed.",
    ),
    Job(
        "notices-send",
        "exchange.notices_send",
        Every(60),
        "Send the notices not yet delivered (margin calls, defaults, enforcement, approvals), with backoff.",
    ),
    Job(
        "session-close",
        "exchange.orders_cancel_at_close",
        Cron("*", "*"),
        "Cancel the open orders whose session has ended (each asset's own sessions).",
    ),
    Job("day-close", "exchange.day_close", Cron("5", "15", WEEKDAYS), "Record each listed asset's daily close."),
    Job(
        "settlement",
        "exchange.settlement_run",
        Cron("30", "15", WEEKDAYS),
        "Settle the day's trades, delivery versus payment.",
    ),
    Job(
        "pledge-valuation",
        "exchange.pledges_value",
        Cron("40", "15", WEEKDAYS),
        "Value registered pledges at the day's close (after the 15:05 close and 15:30 settlement); "
        "raise margin calls; flag loans past maturity.",
    ),
    Job(
        "compliance-deadlines",
        "exchange.compliance_deadlines",
        Cron("30", "0"),
        "Assess the obligations of every compliance year past its deadline: status, shortfall, penalty range.",
    ),
    Job("reconcile-nightly", "exchange.reconcile", Cron("30", "2"), "Check the ledger invariants; log violations."),
    Job(
        "idempotency-forget",
        "exchange.idempotent_requests_forget",
        Cron("10", "3"),
        "Forget the answers kept for Idempotency-Keys (API requests and keyed service calls) after "
        "IDEMPOTENCY_RETENTION_DAYS.",
    ),
    Job(
        "webhooks-deliver",
        "exchange.webhooks_deliver",
        Every(5),
        "Send participant events to their webhook endpoints, in order, retried with backoff for a day.",
    ),
    Job(
        "events-forget",
        "exchange.events_forget",
        Cron("20", "3"),
        "Forget participant events (stream, list, webhooks) older than EVENTS_RETENTION_DAYS.",
    ),
)

# Jobs this module no longer has: sync() deletes their rows.
RETIRED: tuple[str, ...] = ("session-close-afternoon",)


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def job(name: str) -> Job:
    return next(j for j in JOBS if j.name == name)


def _days(spec: str) -> set[int]:
    """Crontab days of the week (0 = Sunday) of "*" or "a-b"."""
    if spec == EVERY_DAY:
        return set(range(7))
    first, _, last = spec.partition("-")
    return set(range(int(first), int(last or first) + 1))


def last_due(when: Cron, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` when a job at fixed times (not every minute) was due."""
    if when.minute == "*" or when.hour == "*":
        return None
    local = now.astimezone(ZoneInfo(TIMEZONE))
    days = _days(when.day_of_week)
    for back in range(8):
        day = local.date() - timedelta(days=back)
        candidate = datetime(day.year, day.month, day.day, int(when.hour), int(when.minute), tzinfo=local.tzinfo)
        if candidate <= local and day.isoweekday() % 7 in days:
            return candidate
    return None


def run_completed(name: str, due_at: datetime) -> None:
    """Record that job ``name`` finished a run for its time ``due_at`` (a second record changes nothing)."""
    from exchange.models import JobRun

    JobRun.objects.bulk_create([JobRun(job=name, due_at=due_at, finished_at=timezone.now())], ignore_conflicts=True)


def run_missing(name: str, due_at: datetime) -> bool:
    from exchange.models import JobRun

    return not JobRun.objects.filter(job=name, due_at=due_at).exists()


@transaction.atomic
def sync(jobs: tuple[Job, ...] = JOBS, retired: tuple[str, ...] = RETIRED) -> SyncResult:
    """Make beat's rows say what ``jobs`` says; return what changed. Idempotent."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    from exchange.locks import lock_row

    result = SyncResult()
    for spec in jobs:
        wanted: dict[str, Any] = {
            "task": spec.task,
            "description": spec.description,
            "kwargs": json.dumps(spec.kwargs, sort_keys=True),
            "interval": None,
            "crontab": None,
        }
        if isinstance(spec.when, Every):
            wanted["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=spec.when.seconds, period=IntervalSchedule.SECONDS
            )
        else:
            wanted["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=spec.when.minute,
                hour=spec.when.hour,
                day_of_week=spec.when.day_of_week,
                day_of_month="*",
                month_of_year="*",
                timezone=TIMEZONE,
            )
        row = lock_row(PeriodicTask.objects.filter(name=spec.name))
        if row is None:
            PeriodicTask.objects.create(name=spec.name, enabled=True, **wanted)
            result.created.append(spec.name)
            continue
        current = {
            "task": row.task,
            "description": row.description,
            "kwargs": json.dumps(json.loads(row.kwargs or "{}"), sort_keys=True),
            "interval": row.interval,
            "crontab": row.crontab,
        }
        if current != wanted:
            for name, value in wanted.items():
                setattr(row, name, value)
            # Saving marks the schedule changed, so a running beat reloads it.
            row.save()
            result.updated.append(spec.name)
    for name in retired:
        deleted, _ = PeriodicTask.objects.filter(name=name).delete()
        if deleted:
            result.deleted.append(name)
    return result


def sync_after_migrate(**kwargs: Any) -> None:
    """post_migrate receiver: the schedule follows the code after every migrate (and test flush)."""
    sync()


def table() -> str:
    """The schedule as the Markdown table docs/operations.md shows (a test holds them equal)."""
    lines = ["| job | task | when | does |", "|---|---|---|---|"]
    lines += [f"| `{j.name}` | `{j.task}` | {j.when.describe()} | {j.description} |" for j in JOBS]
    return "\n".join(lines)
