"""The translation catalogues: ``update`` them from the code, list what is ``missing``, ``compile`` them.

``missing`` lists every message without a translation and every string wrapped for translation in the code
that the catalogue does not hold yet (found by running makemessages on a copy, so nothing is changed);
the exit status is 1 when anything is missing. ``update`` merges the code's strings into
``locale/zh_Hans/LC_MESSAGES/django.po`` (GNU gettext's xgettext and msgmerge do the work), keeping every
translation made; translate the new entries, then ``compile``. See docs/i18n.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandParser
from django.utils.translation import gettext_lazy as _

from config import catalogues
from core.i18n import TranslatedCommand

LANGUAGES = ["zh_Hans"]
# What makemessages reads: the apps' code and templates, not the virtualenv, the tests or the benchmarks.
IGNORE = [".venv/*", "var/*", "tests/*", "bench/*", "docs/*", "*/migrations/*", "build/*", "dist/*"]


def makemessages(**options: Any) -> None:
    """Django's makemessages over the project, with the project's options, from the project's root."""
    here = os.getcwd()
    os.chdir(settings.BASE_DIR)
    try:
        call_command(
            "makemessages", locale=LANGUAGES, add_location="file", ignore_patterns=IGNORE, verbosity=0, **options
        )
    finally:
        os.chdir(here)


@contextmanager
def catalogues_kept() -> Iterator[None]:
    """Run something that rewrites the catalogues, then put them back as they were."""
    saved = tempfile.mkdtemp(prefix="greenledger-locale-")
    locale = Path(settings.BASE_DIR) / "locale"
    try:
        shutil.copytree(locale, saved, dirs_exist_ok=True)
        yield
    finally:
        shutil.copytree(saved, locale, dirs_exist_ok=True)
        shutil.rmtree(saved, ignore_errors=True)


def new_in_code() -> list[tuple[str | None, str]]:
    """The strings wrapped for translation in the code that no catalogue holds yet."""
    locale = Path(settings.BASE_DIR) / "locale"
    before = {path.relative_to(locale): catalogues.msgids(path) for path in catalogues.catalogues(locale)}
    with catalogues_kept():
        makemessages()
        after = {path.relative_to(locale): catalogues.msgids(path) for path in catalogues.catalogues(locale)}
    return sorted(
        (msg for path, ids in after.items() for msg in ids - before.get(path, set())),
        key=lambda m: (m[0] or "", m[1]),
    )


class Command(TranslatedCommand):
    help = _("Update the translation catalogues from the code, list untranslated messages, or compile them.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["update", "missing", "compile"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "update":
            makemessages()
            self.stdout.write("Catalogues updated from the code; translate the empty entries, then compile.")
            action = "missing"
        if action == "compile":
            for mo in catalogues.compile_all(Path(settings.BASE_DIR) / "locale"):
                self.stdout.write(f"compiled {mo}")
            return
        missing = catalogues.untranslated(Path(settings.BASE_DIR) / "locale")
        for entry in missing:
            state = "fuzzy" if entry.fuzzy else "untranslated"
            self.stdout.write(f"{entry.catalogue}: {state}: {entry.msgid!r}")
        new = new_in_code()
        for context, msgid in new:
            self.stdout.write(
                f"in the code, not in the catalogue: {msgid!r}" + (f" (context {context})" if context else "")
            )
        self.stdout.write(f"{len(missing)} untranslated, {len(new)} not yet in the catalogue")
        if missing or new:
            raise SystemExit(1)
