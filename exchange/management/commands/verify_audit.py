"""Recompute the whole audit trail and name the first event or checkpoint that does not match."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from exchange.audit_proof import kept_checkpoints
from exchange.models import AuditEvent
from exchange.services.sealing import audit_verify


class Command(BaseCommand):
    help = (
        "Verify every audit event hash (as stored and as sealed), checkpoint Merkle root, signature and the chain, "
        "and optionally compare with a kept copy of the checkpoint feed; exit 1 on any mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="List every mismatch, not only the first.")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--since-last",
            action="store_true",
            help="Resume after the checkpoint the last intact run verified (once it still has the hash that run "
            "recorded): only checkpoints sealed since and events not yet sealed. Without it the whole trail.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes verifying checkpoints at once (default: one per core).",
        )
        parser.add_argument(
            "--against",
            metavar="FILE",
            help="A copy of the checkpoint feed kept outside (GET /api/v1/audit/checkpoints/feed, pages as JSON or "
            "JSON lines): every checkpoint in it must still be in the trail with the same hash.",
        )

    def handle(
        self,
        *args: Any,
        all: bool,
        no_progress: bool,
        against: str | None,
        since_last: bool,
        workers: int | None,
        **options: Any,
    ) -> None:
        kept = kept_checkpoints(Path(against).read_text()) if against else None
        started = time.monotonic()
        total = AuditEvent.objects.count()
        bar = tqdm(total=total, unit="event", disable=no_progress or None, file=sys.stderr, desc="verify_audit")
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            bar.update(n - done)
            done = n

        result = audit_verify(
            progress=progress, stop_at_first=not all, kept=kept, since_last=since_last, workers=workers, record=True
        )
        bar.update(result.events - done)
        bar.close()
        elapsed = time.monotonic() - started
        rate = result.events / elapsed if elapsed > 0 else 0.0
        summary = (
            f"{result.events} events ({result.unsealed} not yet sealed) in {result.checkpoints} checkpoints, "
            f"{elapsed:.2f}s, {rate:,.0f} events/s"
        ) + (f", {len(kept)} kept checkpoints compared" if kept is not None else "")
        if result.resumed_after is not None:
            summary += f", resumed after checkpoint {result.resumed_after} (verified before)"
        if result.ok:
            self.stdout.write(self.style.SUCCESS(f"verify_audit: the trail is intact: {summary}"))
            return
        for problem in result.problems:
            where = f"event {problem['seq']}" if problem["kind"] == "event" else f"checkpoint {problem['checkpoint']}"
            self.stdout.write(self.style.ERROR(f"MISMATCH {where}: {problem['reason']}"))
        self.stderr.write(
            self.style.ERROR(
                f"verify_audit: the trail does not verify ({summary}). The first mismatch is where to look; "
                "restore from backup and compare with a published checkpoint hash."
            )
        )
        sys.exit(1)
