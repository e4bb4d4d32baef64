"""The completed runs of the scheduled jobs with fixed times: what beat's catch-up checks.

A row says that job ``job`` finished a run for its time ``due_at`` (the latest time it was due when the run
started). A daily job whose time has passed without a row, and that beat sent longer ago than the catch-up
lease, is sent again (``exchange.beat``): its message was lost (a Redis restart) or its run failed for good.
"""

from __future__ import annotations

from django.db import models


class JobRun(models.Model):
    job = models.CharField(max_length=64)
    due_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["job", "due_at"], name="job_run_once_per_time")]

    def __str__(self) -> str:
        return f"{self.job} for {self.due_at:%Y-%m-%d %H:%M}"
