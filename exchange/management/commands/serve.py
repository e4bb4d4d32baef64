"""Serve the API, its docs and the admin, with a Celery worker and beat in the same process.

This is what ``make run`` starts: one process, nothing else to run. HTTP is served by uvicorn, an ASGI
server, so the live event stream (``/api/v1/events/stream``, ``exchange.stream``) holds its long-lived
connections as coroutines beside the API; Django's views run one at a time in its sync thread, as they did
under the plain WSGI server. Without ``REDIS_URL`` the worker and beat share the in-process broker; with
it they use Redis (and other workers may join). For a real deployment run gunicorn, an ASGI server for the
stream, ``celery worker`` and ``celery beat`` as separate processes instead (docs/operations.md).

On the demo market it also starts the two demo trading bots (``exchange.bots``) as threads that trade
over HTTP with this same server, so the market moves on its own; ``--no-bots`` leaves them out. They
start only when ``seed_demo`` has created their tokens, and never in production.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management.base import CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.i18n import TranslatedCommand

DEMO_BLOCK_ASSETS = ("BEA-2025",)
"""The instruments the demo's market maker offers blocks of (the Beijing pilot's; the size is the rulebook's)."""


class Command(TranslatedCommand):
    help = _("Serve on 127.0.0.1:8000 with the scheduled jobs running in-process (what make run starts).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker", action="store_true", help=gettext("Serve HTTP only; run no Celery worker or beat.")
        )
        parser.add_argument("--no-bots", action="store_true", help=gettext("Don't start the demo trading bots."))
        parser.add_argument(
            "--no-engine",
            action="store_true",
            help=gettext(
                "Run no matching engine here even with GREENLEDGER_ORDER_ENGINE on (orders then go to a separate "
                "manage.py run_engine). With the setting off orders match inline and no engine runs."
            ),
        )
        parser.add_argument(
            "--bot-interval",
            type=float,
            default=20.0,
            help=gettext("Seconds between the demo bots' moves (default 20)."),
        )

    def handle(
        self,
        *args: Any,
        addr: str,
        port: int,
        no_worker: bool,
        no_bots: bool = False,
        bot_interval: float = 20.0,
        no_engine: bool = False,
        **options: Any,
    ) -> None:
        import uvicorn

        from config.asgi import django_application
        from exchange.stream import with_stream

        app = with_stream(ASGIStaticFilesHandler(django_application))  # the one config.asgi built
        level = "info" if settings.LOG_LEVEL in {"DEBUG", "INFO"} else "warning"
        config = uvicorn.Config(
            app, host=addr, port=port, lifespan="on", log_level=level, access_log=False, timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        if settings.GREENLEDGER.get("ORDER_ENGINE") and not no_engine:
            self.start_engine()
        http = threading.Thread(target=server.run, name="http", daemon=True)
        http.start()
        while not server.started and http.is_alive():
            threading.Event().wait(0.05)
        broker = "Redis" if settings.CELERY_BROKER_URL.startswith("redis") else gettext("the in-process broker")
        host = settings.DATABASES["default"]["HOST"] or "localhost"
        database = (
            gettext("the embedded PostgreSQL in %(host)s")
            if host.startswith("/")
            else gettext("PostgreSQL at %(host)s")
        ) % {"host": host}
        self.stderr.write(
            gettext(
                "Serving http://%(addr)s:%(port)s/ (API /api/v1/, events /api/v1/events/stream, docs /api/docs/, "
                "admin /admin/) on %(database)s"
            )
            % {"addr": addr, "port": port, "database": database}
            + ("" if no_worker else gettext("; scheduled jobs on %(broker)s") % {"broker": broker})
            + gettext(". Ctrl-C stops.")
        )
        if not no_bots:
            self.start_bots(addr, port, bot_interval)
        if no_worker:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
        else:
            self.run_worker()
        server.should_exit = True
        http.join(timeout=5)
        sys.exit(0)

    def start_engine(self) -> None:
        """The matching engine as a thread of this process (the same code as ``manage.py run_engine``): it owns
        every continuous book no other engine owns, and orders placed over HTTP go through it."""
        from django.db import connection

        from exchange.engine.engine import Engine

        engine = Engine()

        def run() -> None:
            try:
                engine.run()
            finally:
                connection.close()

        threading.Thread(target=run, name="matching-engine", daemon=True).start()
        self.stderr.write(gettext("Matching engine started in this process (--no-engine to leave it out)."))

    def start_bots(self, addr: str, port: int, interval: float) -> None:
        from accounts.models import ApiToken
        from exchange.bots import start_bots
        from exchange.management.commands.seed_demo import BOT_TOKENS
        from exchange.selectors.rulebooks import block_minimums

        if getattr(settings, "PRODUCTION", False):
            return
        tokens = {role: text for role, (_, text) in BOT_TOKENS.items()}
        prefixes = [text.split("_")[1] for text in tokens.values()]
        if ApiToken.objects.filter(prefix__in=prefixes, revoked_at__isnull=True).count() < len(prefixes):
            self.stderr.write(
                gettext("Demo trading bots not started: their tokens are missing (run manage.py seed_demo).")
            )
            return
        host = "127.0.0.1" if addr in {"0.0.0.0", "::", ""} else addr  # noqa: S104 - where the bots connect
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        # The block offers are of the block agreement's minimum size in the rulebook in effect (BJ-BEA's).
        start_bots(url, tokens, interval=interval, blocks=block_minimums(DEMO_BLOCK_ASSETS))
        self.stderr.write(
            gettext(
                "Demo trading bots started: a market maker (Shougang) and a taker (Jinyu Cement) on CEA-2024, "
                "CEA-2025 and BEA-2025 (book, listings, block offers, auctions), every %(interval)ss or so "
                "(--no-bots to leave them out). Trades settle at 15:30 on weekdays, or now with: manage.py settle"
            )
            % {"interval": f"{interval:g}"}
        )

    def run_worker(self) -> None:
        import warnings

        from celery.beat import EmbeddedService
        from celery.exceptions import SecurityWarning

        from config.celery import app
        from exchange.events import sync as events_sync
        from exchange.schedule import sync

        sync()  # the jobs as exchange/schedule.py lists them (migrate does it too; this is cheap and idempotent)
        events_sync()  # and the event routes (exchange/events.py)

        warnings.simplefilter("ignore", SecurityWarning)  # a development server in a container may run as root
        in_process = settings.CELERY_BROKER_URL.startswith("memory")
        if in_process:
            app.conf.worker_enable_remote_control = False
        beat = EmbeddedService(app, thread=True, scheduler_cls=settings.CELERY_BEAT_SCHEDULER)
        beat.start()
        worker = app.Worker(
            pool="solo",
            concurrency=1,
            loglevel=settings.LOG_LEVEL,
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=in_process,
            quiet=True,
            hostname=f"serve@{threading.get_native_id()}",
        )
        try:
            worker.start()
        finally:
            beat.stop()
