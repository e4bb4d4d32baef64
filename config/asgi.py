"""The ASGI application: Django, with the live event stream (``exchange.stream``) at its own path.

Run it with an ASGI server, e.g. ``uvicorn config.asgi:application`` (``make run`` serves it so, see the
``serve`` command); docs/operations.md says how a deployment places it beside the WSGI workers.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()

from exchange.stream import with_stream  # noqa: E402 - after Django is set up

application = with_stream(django_application)
