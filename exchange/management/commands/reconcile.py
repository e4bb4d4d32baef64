"""Check the ledger's invariants on the live database; exit non-zero naming each violation."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext, ngettext
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
                mark = gettext("FAIL") if found else gettext("ok")
                self.stderr.write(
                    f"  [{index:>2}/{len(CHECKS)}] {mark:4} {gettext(name)}" + (f" ({found})" if found else "")
                )

        for violation in reconcile(on_check=progress):
            violations.append(violation)
            self.stdout.write(
                self.style.ERROR(f"[{gettext(violation.invariant)}] {violation.message.text(gettext)}")
            )
            seen_checks.add(violation.invariant)
        elapsed = time.monotonic() - started
        transactions, postings = Transaction.objects.count(), Posting.objects.count()
        blocks, assets = SerialBlock.objects.count(), Asset.objects.count()
        counts = gettext("%(transactions)s, %(postings)s, %(blocks)s, %(assets)s") % {
            "transactions": ngettext("%(count)s transaction", "%(count)s transactions", transactions)
            % {"count": transactions},
            "postings": ngettext("%(count)s posting", "%(count)s postings", postings) % {"count": postings},
            "blocks": ngettext("%(count)s serial block", "%(count)s serial blocks", blocks) % {"count": blocks},
            "assets": ngettext("%(count)s asset", "%(count)s assets", assets) % {"count": assets},
        }
        checks = ngettext("%(count)s check", "%(count)s checks", len(CHECKS)) % {"count": len(CHECKS)}
        if violations:
            self.stderr.write(
                self.style.ERROR(
                    gettext(
                        "reconcile: %(violations)s in %(failed)s of %(checks)s (%(counts)s, %(seconds)ss). The journal "
                        "is the truth: investigate before posting more."
                    )
                    % {
                        "violations": ngettext("%(count)s violation", "%(count)s violations", len(violations))
                        % {"count": len(violations)},
                        "failed": len(seen_checks),
                        "checks": checks,
                        "counts": counts,
                        "seconds": f"{elapsed:.2f}",
                    }
                )
            )
            sys.exit(1)
        self.stdout.write(
            self.style.SUCCESS(
                gettext("reconcile: clean, %(checks)s over %(counts)s in %(seconds)ss")
                % {"checks": checks, "counts": counts, "seconds": f"{elapsed:.2f}"}
            )
        )
