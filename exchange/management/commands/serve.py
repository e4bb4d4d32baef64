"""Serve the API, its docs and the admin, with a Celery worker and beat in the same process.

This is what ``make run`` starts: one process, nothing else to run. Without ``REDIS_URL`` the worker
and beat share the in-process broker; with it they use Redis (and other workers may join). For a real
deployment run gunicorn, ``celery worker`` and ``celery beat`` as separate processes instead (README).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management.base import BaseCommand, CommandParser
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer, get_internal_wsgi_application


class QuietHandler(WSGIRequestHandler):
    """Log requests at the django.server logger's level (quiet by default), errors always."""


class Command(BaseCommand):
    help = "Serve on 127.0.0.1:8000 with the scheduled jobs running in-process (what make run starts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Serve HTTP only; run no Celery worker or beat.")

    def handle(self, *args: Any, addr: str, port: int, no_worker: bool, **options: Any) -> None:
        handler = StaticFilesHandler(get_internal_wsgi_application())
        server = WSGIServer((addr, port), QuietHandler, ipv6=":" in addr)
        server.daemon_threads = True
        server.set_app(handler)
        http = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        http.start()
        broker = "Redis" if settings.CELERY_BROKER_URL.startswith("redis") else "the in-process broker"
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stderr.write(
            f"Serving http://{addr}:{port}/ (API /api/v1/, docs /api/docs/, admin /admin/) on {database}"
            + ("" if no_worker else f"; scheduled jobs on {broker}")
            + ". Ctrl-C stops."
        )
        if no_worker:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        else:
            self.run_worker()
        server.shutdown()
        sys.exit(0)

    def run_worker(self) -> None:
        import warnings

        from celery.beat import EmbeddedService
        from celery.exceptions import SecurityWarning

        from config.celery import app

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
