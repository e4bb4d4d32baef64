"""The periodic jobs: one list (exchange.schedule), written into beat's tables by one idempotent step."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.celery import app
from exchange import schedule

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def rows() -> dict[str, tuple]:
    return {
        t.name: (t.task, t.enabled, t.interval_id, t.crontab_id, t.description, t.kwargs)
        for t in PeriodicTask.objects.all()
    }


def test_every_job_of_the_module_has_its_row_after_migrate_and_nothing_else():
    names = {t.name: t for t in PeriodicTask.objects.all()}

    assert set(names) == {j.name for j in schedule.JOBS}
    for job in schedule.JOBS:
        row = names[job.name]
        assert (row.task, row.enabled, json.loads(row.kwargs)) == (job.task, True, job.kwargs)
        if isinstance(job.when, schedule.Every):
            assert (row.interval.every, row.interval.period, row.crontab) == (job.when.seconds, "seconds", None)
        else:
            cron = row.crontab
            assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone), row.interval) == (
                job.when.minute,
                job.when.hour,
                job.when.day_of_week,
                "Asia/Shanghai",
                None,
            )


def test_every_scheduled_task_exists():
    app.loader.import_default_modules()
    assert {j.task for j in schedule.JOBS} <= set(app.tasks)


def test_sync_is_idempotent():
    before = rows()

    result = schedule.sync()

    assert not result.changed
    assert rows() == before
    assert CrontabSchedule.objects.count() == len({j.when for j in schedule.JOBS if isinstance(j.when, schedule.Cron)})
    intervals = {j.when for j in schedule.JOBS if isinstance(j.when, schedule.Every)}
    assert IntervalSchedule.objects.count() == len(intervals)


def test_sync_puts_back_an_edited_job_and_deletes_retired_ones_but_keeps_a_disabled_job_disabled():
    edited = PeriodicTask.objects.get(name="settlement")
    edited.crontab, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="9", timezone="Asia/Shanghai")
    edited.task = "exchange.something_else"
    edited.save()
    PeriodicTask.objects.filter(name="reconcile-nightly").update(enabled=False)
    PeriodicTask.objects.filter(name="day-close").delete()
    retired = PeriodicTask.objects.create(
        name="session-close-afternoon", task="exchange.orders_cancel_at_close", crontab=edited.crontab
    )

    result = schedule.sync()

    assert (result.created, result.updated, result.deleted) == (["day-close"], ["settlement"], [retired.name])
    settlement = PeriodicTask.objects.get(name="settlement")
    cron = settlement.crontab
    assert (settlement.task, cron.hour, cron.minute) == ("exchange.settlement_run", "15", "30")
    assert not PeriodicTask.objects.get(name="reconcile-nightly").enabled
    assert not PeriodicTask.objects.filter(name=retired.name).exists()


def test_the_command_syncs_and_says_what_it_did(capsys):
    PeriodicTask.objects.filter(name="audit-seal").delete()

    call_command("sync_schedule")
    call_command("sync_schedule")

    out = capsys.readouterr().out
    assert out.splitlines() == [
        "created audit-seal",
        f"sync_schedule: {len(schedule.JOBS)} jobs",
        f"sync_schedule: {len(schedule.JOBS)} jobs, no change",
    ]


def test_the_operations_guide_shows_the_schedule_table():
    assert schedule.table() in DOCS.read_text()


# --- catch-up: a daily job sent but never finished is sent again ---------------------------------------------
def china(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize(
    ("name", "now", "due"),
    [
        ("settlement", china(2026, 11, 30, 10, 0), china(2026, 11, 27, 15, 30)),  # Monday morning: Friday's
        ("settlement", china(2026, 11, 30, 15, 30), china(2026, 11, 30, 15, 30)),
        ("reconcile-nightly", china(2026, 11, 30, 2, 29), china(2026, 11, 29, 2, 30)),
        ("session-close", china(2026, 11, 30, 2, 29), None),  # every minute: nothing to catch up
    ],
)
def test_the_latest_time_a_job_was_due(name, now, due):
    assert schedule.last_due(schedule.job(name).when, now) == due


def test_a_finished_run_is_recorded_once_for_its_time(monkeypatch):
    from exchange.models import JobRun
    from exchange.tasks import settlement_run_task

    monkeypatch.setattr(timezone, "now", lambda: china(2026, 11, 30, 15, 31))
    settlement_run_task()
    settlement_run_task()

    assert list(JobRun.objects.values_list("job", "due_at")) == [("settlement", china(2026, 11, 30, 15, 30))]


@pytest.mark.django_db(transaction=True)  # beat commits and closes connections as it goes
def test_beat_sends_again_a_job_sent_for_its_time_but_never_finished(monkeypatch):
    from exchange.beat import CATCH_UP_TRIES, Scheduler

    sent: list[str] = []
    PeriodicTask.objects.exclude(name="settlement").update(enabled=False)
    PeriodicTask.objects.filter(name="settlement").update(last_run_at=china(2026, 11, 30, 15, 30, 1))
    monkeypatch.setattr(timezone, "now", lambda: china(2026, 11, 30, 15, 39))
    beat = Scheduler(app=app)
    monkeypatch.setattr(beat, "apply_async", lambda entry, **kw: sent.append(entry.name))

    assert beat.catch_up() == []  # sent 9 minutes ago: it may still be running

    monkeypatch.setattr(timezone, "now", lambda: china(2026, 11, 30, 15, 41))
    assert [beat.catch_up() for _ in range(CATCH_UP_TRIES + 1)] == [["settlement"]] * CATCH_UP_TRIES + [[]]
    assert sent == ["settlement"] * CATCH_UP_TRIES

    schedule.run_completed("settlement", china(2026, 11, 30, 15, 30))
    fresh = Scheduler(app=app)
    monkeypatch.setattr(fresh, "apply_async", lambda entry, **kw: sent.append(entry.name))
    assert fresh.catch_up() == []  # it finished: nothing to send
