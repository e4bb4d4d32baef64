"""One place for each thing (docs/architecture.md): read from the source, so a second home fails here.

- every row and advisory lock is taken through ``exchange/locks.py`` (The lock order), except the two the
  module names: an Idempotency-Key's lock, taken with its row in one statement by the key store, and the
  leading beat's session lock;
- every periodic job is written by ``exchange/schedule.py`` (The schedule): nothing else names
  django-celery-beat's tables;
- one database engine: no branch on the engine remains;
- nothing cites a design document the repository does not hold.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "config", "accounts", "exchange", "bench")


def _sources(*folders: str, suffixes: tuple[str, ...] = (".py",)) -> dict[str, str]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in suffixes and path.is_file() and "migrations" not in path.parts:
                found[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return found


def _using(pattern: str, sources: dict[str, str]) -> list[str]:
    return sorted(name for name, text in sources.items() if re.search(pattern, text))


def test_row_and_advisory_locks_are_taken_in_the_lock_module_only():
    locking = _using(r"select_for_update\(|pg_(try_)?advisory", _sources(*APPS))

    assert locking == [
        # the single transfer's raw-SQL floor: the locks the transfer takes, as plain statements on a bench
        # connection of its own (the key's, IDEMPOTENCY_LOCK_CLASS; the audit writers', AUDIT_LOCK_KEY)
        "bench/transfers.py",
        "exchange/beat.py",  # the leading beat's session lock, on a connection of its own (BEAT_LOCK_KEY)
        "exchange/locks.py",
        "exchange/services/idempotency.py",  # a key's lock with its row, one statement (IDEMPOTENCY_LOCK_CLASS)
    ]
    assert "BEAT_LOCK_KEY" in _sources("exchange")["exchange/beat.py"]
    floor = _sources("bench")["bench/transfers.py"]
    assert "IDEMPOTENCY_LOCK_CLASS" in floor
    assert "AUDIT_LOCK_KEY" in floor
    assert "IDEMPOTENCY_LOCK_CLASS" in _sources("exchange")["exchange/services/idempotency.py"]


def test_periodic_jobs_are_written_by_the_schedule_module_only():
    assert _using(r"PeriodicTask|CrontabSchedule|IntervalSchedule|SolarSchedule", _sources(*APPS)) == [
        "exchange/schedule.py"
    ]


def test_no_branch_on_the_database_engine_remains():
    everything = _sources(*APPS, "tests", "docs", suffixes=(".py", ".md", ".sql", ".toml", ".cfg"))
    # (the pattern is spelled in two pieces so that this file does not match it)
    assert _using("is_" + "postgres|connection[.]" + "vendor", everything) == []


def test_nothing_cites_a_design_document_the_repository_does_not_hold():
    everything = _sources(*APPS, "docs", suffixes=(".py", ".md", ".sql"))
    everything["README.md"] = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _using("DESIGN" + r"\.md", everything) == []
