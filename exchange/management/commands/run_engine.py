"""Run the matching engine: own the continuous books of the listed instruments (of ``--market``), apply their
orders in arrival order, commit in batches, acknowledge after each commit (``exchange.engine``).

Run one process per market (or one for all). A second engine for a book another owns waits and takes the book
over when the first stops. SIGTERM or Ctrl-C stops it after the batch in hand; its queued requests wait for the
next engine.
"""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.i18n import TranslatedCommand
from exchange.engine.engine import BATCH, Engine


class Command(TranslatedCommand):
    help = _("Run the matching engine for the continuous books (all listed instruments, or those of --market).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--market", action="append", default=[], help=gettext("A market code (repeatable; default all).")
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=BATCH,
            help=gettext("Most requests per commit (default %(batch)s).") % {"batch": BATCH},
        )

    def handle(self, *args: Any, market: list[str], batch: int, **options: Any) -> None:
        engine = Engine(market, batch=batch)
        signal.signal(signal.SIGTERM, lambda *_: engine.stop())
        self.stdout.write(
            gettext("matching engine %(owner)s starting (markets: %(markets)s)")
            % {"owner": engine.owner, "markets": ", ".join(market) or gettext("all")}
        )
        try:
            engine.run()
        except KeyboardInterrupt:
            engine.stop()
        self.stdout.write(gettext("matching engine stopped"))
