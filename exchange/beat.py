"""The beat scheduler: django-celery-beat's database schedule, with one leader and no lost sends.

- **One leader.** Any number of ``celery beat`` processes may run; only the one holding a PostgreSQL
  advisory lock (a session lock on a connection of its own) sends jobs, the others stand by and take over
  within seconds when the leader dies or loses the database. A new leader first re-reads every job's last
  run from the database (beat writes it after each send, ``beat_sync_every = 1``), so a job sent by the
  old leader is not sent again for the same period.
- **A job that could not be sent stays due.** Celery's beat records a run before sending it; when the
  broker is down the send fails and the job would wait for its next time (the next day for settlement).
  Here a failed send puts the job's last run back, so it is sent as soon as the broker answers again.
- While the database is down the leader loses its lock and sends nothing; when it is back, jobs that
  fell due meanwhile are due at once (their last run is before their time) and are sent then.
- **Catch-up.** A job at fixed times (settlement, the close, valuation ...) records each finished run
  (``JobRun``). Every half minute the leader looks for one that it sent for its latest time more than
  ``CATCH_UP_LEASE`` ago with no finished run since: its message was lost (Redis restarted without its
  data) or its run failed for good. It sends it again, at most ``CATCH_UP_TRIES`` times per time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
from celery.schedules import crontab
from django.db import DatabaseError, connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from exchange import schedule
from exchange.locks import BEAT_LOCK_KEY

logger = logging.getLogger("greenledger.beat")

STANDBY_INTERVAL = 2.0
SEND_RETRY_DELAY = 2.0
CATCH_UP_EVERY = 30.0
CATCH_UP_LEASE = timedelta(minutes=10)
CATCH_UP_TRIES = 3


class Scheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._leader: psycopg.Connection[Any] | None = None
        self._caught_up_at = 0.0
        self._resent: dict[tuple[str, datetime], int] = {}
        super().__init__(*args, **kwargs)

    # --- leadership -------------------------------------------------------------------------------------
    def is_leader(self) -> bool:
        """Whether this process holds the beat lock (taking it if it is free)."""
        if self._leader is not None:
            try:
                self._leader.execute("SELECT 1")
                return True
            except psycopg.Error:
                logger.warning("beat lost its database connection and its lead; standing by")
                self._release()
        try:
            params = connections["default"].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            params.setdefault("connect_timeout", 5)
            conn = psycopg.connect(**params, autocommit=True, application_name="greenledger-beat")
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", [BEAT_LOCK_KEY]).fetchone()
        except psycopg.Error:
            return False
        if not (row and row[0]):
            conn.close()
            return False
        self._leader = conn
        logger.warning("beat took the lead; sending the scheduled jobs")
        # Read every job's last run afresh: another beat may have sent jobs since this one read them.
        self._initial_read = True
        self._heap = None
        return True

    def _release(self) -> None:
        if self._leader is not None:
            with contextlib.suppress(psycopg.Error):  # the connection may be gone already
                self._leader.close()
        self._leader = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.is_leader():
            return STANDBY_INTERVAL
        if time.monotonic() - self._caught_up_at >= CATCH_UP_EVERY:
            self._caught_up_at = time.monotonic()
            try:
                self.catch_up()
            except DatabaseError as exc:
                logger.warning("catch-up check failed; tried again later", extra={"error": str(exc)})
        return float(super().tick(*args, **kwargs))

    def catch_up(self) -> list[str]:
        """Send again each job at fixed times whose latest run was sent but never finished; return them."""
        now = timezone.now()
        resent = []
        for entry in list(self.schedule.values()):
            spec = next((j for j in schedule.JOBS if j.name == entry.name), None)
            if spec is None or not isinstance(spec.when, schedule.Cron) or not isinstance(entry.schedule, crontab):
                continue
            due = schedule.last_due(spec.when, now)
            sent = entry.model.last_run_at
            if due is None or sent is None or sent < due or now - sent < CATCH_UP_LEASE:
                continue  # not sent for this time yet (beat's own schedule does that), or not long ago
            tries = self._resent.get((entry.name, due), 0)
            if tries >= CATCH_UP_TRIES or not schedule.run_missing(entry.name, due):
                continue
            logger.warning(
                "scheduled job sent but never finished; sending it again",
                extra={"job": entry.name, "due_at": due.isoformat(), "sent_at": sent.isoformat()},
            )
            self._resent[(entry.name, due)] = tries + 1
            try:
                self.apply_async(entry, advance=True)
            except Exception as exc:
                logger.warning("catch-up send failed", extra={"job": entry.name, "error": str(exc)})
            resent.append(entry.name)
        return resent

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    # --- sending ----------------------------------------------------------------------------------------
    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            logger.warning(
                "scheduled job not sent; it stays due and is sent again when the broker answers",
                extra={"job": entry.name, "task": entry.task, "error": str(exc)},
            )
            # tick() has already recorded the run (the model's last_run_at is now): put it back and write
            # that back at the next sync, then rebuild the heap from the entries, where this one is due.
            entry.model.last_run_at = entry.last_run_at
            entry.model.total_run_count = entry.total_run_count
            self._dirty.add(entry.name)
            self._initial_read = True  # write it, then re-read every job's last run from the database
            self._heap = None
            time.sleep(SEND_RETRY_DELAY)
