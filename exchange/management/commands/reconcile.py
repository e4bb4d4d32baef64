"""Check the ledger's invariants on the live database; exit non-zero naming each violation."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.i18n import TranslatedCommand
from exchange.models import Asset, Posting, SerialBlock, Transaction
from exchange.selectors.reconcile import CHECKS, Violation, reconcile


class Command(TranslatedCommand):
    help = _(
        "Check invariants 1-7 on live data: balanced journal, balances = postings, supply, serial blocks, the "
        "journal against the audit trail, running balances, the journal's order."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help=gettext("Print only violations and the summary."))

    def handle(self, *args: Any, quiet: bool, **options: Any) -> None:
        started = time.monotonic()
        violations: list[Violation] = []
        seen_checks: set[str] = set()

        def progress(index: int, name: str, found: int) -> None:
            # Each check is one query; say how it went as it finishes (stderr, so stdout stays the report).
            if not quiet:
                mark = "FAIL" if found else "ok"
                self.stderr.write(f"  [{index:>2}/{len(CHECKS)}] {mark:4} {name}" + (f" ({found})" if found else ""))

        for violation in reconcile(on_check=progress):
            violations.append(violation)
            self.stdout.write(self.style.ERROR(str(violation)))
            seen_checks.add(violation.invariant)
        elapsed = time.monotonic() - started
        counts = (
            f"{Transaction.objects.count()} transactions, {Posting.objects.count()} postings, "
            f"{SerialBlock.objects.count()} serial blocks, {Asset.objects.count()} assets"
        )
        if violations:
            self.stderr.write(
                self.style.ERROR(
                    f"reconcile: {len(violations)} violation(s) in {len(seen_checks)} of {len(CHECKS)} checks "
                    f"({counts}, {elapsed:.2f}s). The journal is the truth: investigate before posting more."
                )
            )
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"reconcile: clean, {len(CHECKS)} checks over {counts} in {elapsed:.2f}s"))
