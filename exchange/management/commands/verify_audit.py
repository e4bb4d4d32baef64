"""Recompute the whole audit trail and name the first event or checkpoint that does not match."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from tqdm import tqdm

from core.i18n import TranslatedCommand
from exchange.audit_proof import ProofProblem, kept_checkpoints
from exchange.models import AuditEvent
from exchange.services.sealing import audit_verify


class Command(TranslatedCommand):
    help = _(
        "Verify every audit event hash (as stored and as sealed), checkpoint Merkle root, signature and the chain, "
        "and optionally compare with a kept copy of the checkpoint feed; exit 1 on any mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help=gettext("List every mismatch, not only the first."))
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--since-last",
            action="store_true",
            help=gettext(
                "Resume after the checkpoint the last intact run verified (once it still has the hash that run "
                "recorded): only checkpoints sealed since and events not yet sealed. Without it the whole trail."
            ),
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help=gettext("Processes verifying checkpoints at once (default: one per core)."),
        )
        parser.add_argument(
            "--against",
            metavar="FILE",
            help=gettext(
                "A copy of the checkpoint feed kept outside (GET /api/v1/audit/checkpoints/feed, pages as JSON or "
                "JSON lines): every checkpoint in it must still be in the trail with the same hash."
            ),
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
        summary = gettext(
            "%(events)s (%(unsealed)s not yet sealed) in %(checkpoints)s, %(seconds)ss, %(rate)s events/s"
        ) % {
            "events": ngettext("%(count)s event", "%(count)s events", result.events) % {"count": result.events},
            "unsealed": result.unsealed,
            "checkpoints": ngettext("%(count)s checkpoint", "%(count)s checkpoints", result.checkpoints)
            % {"count": result.checkpoints},
            "seconds": f"{elapsed:.2f}",
            "rate": f"{rate:,.0f}",
        }
        if kept is not None:
            summary += ngettext(
                ", %(count)s kept checkpoint compared", ", %(count)s kept checkpoints compared", len(kept)
            ) % {"count": len(kept)}
        if result.resumed_after is not None:
            summary += gettext(", resumed after checkpoint %(number)s (verified before)") % {
                "number": result.resumed_after
            }
        if result.ok:
            self.stdout.write(
                self.style.SUCCESS(gettext("verify_audit: the trail is intact: %(summary)s") % {"summary": summary})
            )
            return
        for problem in result.problems:
            self.stdout.write(self.style.ERROR(mismatch_line(problem)))
        self.stderr.write(
            self.style.ERROR(
                gettext(
                    "verify_audit: the trail does not verify (%(summary)s). The first mismatch is where to look; "
                    "restore from backup and compare with a published checkpoint hash."
                )
                % {"summary": summary}
            )
        )
        sys.exit(1)


def mismatch_line(problem: dict[str, Any]) -> str:
    """A mismatch as the operator reads it; a proof checker's problem (a signature, a kept copy) in their language."""
    reason = problem["reason"]
    if isinstance(reason, ProofProblem):
        reason = reason.text(gettext)
    if problem["kind"] == "event":
        return gettext("MISMATCH event %(seq)s: %(reason)s") % {"seq": problem["seq"], "reason": reason}
    return gettext("MISMATCH checkpoint %(number)s: %(reason)s") % {"number": problem["checkpoint"], "reason": reason}
