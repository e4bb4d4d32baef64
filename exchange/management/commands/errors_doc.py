"""Write docs/errors.md from the error catalogue (``core.errors.catalogue()``): every code with its HTTP
status, what it means and what the caller should do. ``--check`` writes nothing and fails when the file
differs (tests/docs/test_errors_doc.py holds the two equal)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError, catalogue, remedy_of
from core.i18n import TranslatedCommand

HEADER = """# Error codes

Every refusal the API makes is JSON with a stable code, a message and details:

```json
{"error": {"code": "insufficient_available",
           "message": "Account CN-100-000003 has 1149000 CEA-2024 available; 99999999 requested.",
           "details": {"account": "CN-100-000003", "available": 1149000}}}
```

Branch on `code` and the HTTP status, never on the message: the message is written for people, in the
language the request asks for (`Accept-Language: en`, or Chinese by default), and may be reworded. A
refusal changes nothing, and its Idempotency-Key stays free for a corrected request.

This page is generated from the code's catalogue (`core.errors.catalogue()`): after adding a code, run
`manage.py errors_doc` (a test fails until the page is current). The OpenAPI document at `/api/schema/`
lists the codes each operation can answer (`x-error-codes`).

| code | status | meaning | what to do | defined in |
|---|---|---|---|---|
"""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _meaning(cls: type[DomainError]) -> str:
    doc = inspect.getdoc(cls) if cls.__doc__ else ""
    message = str(cls.default_message)
    if doc and doc != inspect.getdoc(DomainError):
        first = doc.split("\n\n")[0]
        return message if first == message else f"{message} {first}"
    return message


def render() -> str:
    with translation.override("en"):
        rows = [
            f"| `{code}` | {cls.status} | {_cell(_meaning(cls))} | {_cell(remedy_of(cls))} | `{cls.__module__}` |"
            for code, cls in catalogue().items()
        ]
    return HEADER + "\n".join(rows) + "\n"


def path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "errors.md"


class Command(TranslatedCommand):
    help = _("Write docs/errors.md from the error catalogue (--check: fail if it is not current).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help=gettext("Write nothing; exit 1 if the file differs."))

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        text = render()
        if check:
            if not path().exists() or path().read_text() != text:
                raise CommandError("docs/errors.md is not current: run manage.py errors_doc")
            self.stdout.write("docs/errors.md is current.")
            return
        path().write_text(text)
        self.stdout.write(f"Wrote {path()} ({len(catalogue())} codes).")
