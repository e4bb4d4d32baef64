"""The ASGI application: Django, with the live event stream (``exchange.stream``) at its own path.

Run it with an ASGI server, e.g. ``uvicorn config.asgi:application`` (``make run`` serves it so, see the
``serve`` command); docs/operations.md says how a deployment places it beside the WSGI workers.
"""

import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def django_asgi_application() -> ASGIHandler:
    """Django's ASGI application, whose requests each close their database connection when they end.

    Under ASGI Django runs each request's synchronous code in a thread of its own (asgiref's
    ``ThreadSensitiveContext``), and a connection belongs to the thread that opened it. A connection kept
    for reuse (``CONN_MAX_AGE``) could never be reused by a later request: it stayed open and idle until its
    finished thread was garbage collected, so a steady stream of requests held dozens of server connections
    and ran PostgreSQL out of them ("too many clients already"). An ASGI process therefore keeps none, as
    Django advises: each request's connection is closed when the request finishes (``request_finished``).
    The WSGI workers (gunicorn, one thread each) keep theirs as ``DB_CONN_MAX_AGE`` says.
    """
    application = get_asgi_application()  # sets Django up first
    from django.db import connections

    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 0
    return application


django_application = django_asgi_application()

from exchange.stream import with_stream  # noqa: E402 - after Django is set up

application = with_stream(django_application)
