"""The ASGI application: Django, with the live event stream (``exchange.stream``) at its own path.

Run it with an ASGI server, e.g. ``uvicorn config.asgi:application`` (``make run`` serves it so, see the
``serve`` command); docs/operations.md says how a deployment places it beside the WSGI workers.

Under ASGI a database connection is kept per request, not per thread: Django opens each request's in a
context of its own, and a connection kept alive for reuse (``CONN_MAX_AGE`` above 0) is never reused, only
left open until garbage collection. A few dozen admin pages a minute then held dozens of idle connections
and, at PostgreSQL's ``max_connections``, every further request (this server's and every other client's)
was refused. So an ASGI process closes each request's connection when the request ends.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def close_connections_per_request() -> None:
    """Set ``CONN_MAX_AGE`` to 0 for every database: Django then closes a request's connection when the
    request finishes (``close_old_connections``), which is the only time an ASGI request's can be closed."""
    from django.conf import settings
    from django.db import connections

    for alias in connections:
        settings.DATABASES[alias]["CONN_MAX_AGE"] = 0
        connections.settings[alias]["CONN_MAX_AGE"] = 0


from django.core.asgi import get_asgi_application  # noqa: E402 - after the settings module is named

django_application = get_asgi_application()
close_connections_per_request()

from exchange.stream import with_stream  # noqa: E402 - after Django is set up

application = with_stream(django_application)
