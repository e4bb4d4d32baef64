"""Texts the ledger keeps: written once, when they are made, in the registry's language.

A journal entry's memo, a four-eyes request's summary and an e-mailed notice are records: the ledger never
rewrites a posted row, an auditor reads what was written, and a notice is sent as it was queued. So they are
translated when they are made, in the registry's language (``settings.LANGUAGE_CODE``, Chinese), whatever the
language of the request that causes them; what is read live (pages, API errors, the CLI, a CSV's headers and
words) is translated when it is shown, in the reader's language. docs/i18n.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import translation
from django.utils.functional import Promise, lazy


@contextmanager
def registry_language() -> Iterator[None]:
    """Within the block, ``gettext`` translates into the registry's language."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


def filled_text(message: str, params: Mapping[str, Any] | None = None) -> str:
    """``message`` (an English msgid, marked with ``gettext_noop`` or literal) translated into the active
    language, with its named ``%(name)s`` placeholders filled from ``params``; lazy parameters (a choice's
    label) are translated into that language too. ``registry_text`` and ``lazy_text`` say when."""
    text = translation.gettext(message)
    return text % {k: str(v) for k, v in params.items()} if params else text


def registry_text(message: str, params: Mapping[str, Any] | None = None) -> str:
    """``message`` filled and translated (``filled_text``) in the registry's language: a text the ledger keeps."""
    with registry_language():
        return filled_text(message, params)


def lazy_text(message: str, params: Mapping[str, Any]) -> str:
    """``message`` filled and translated (``filled_text``) when it is read, in the reader's language: a text
    defined once, at import (a serializer's help in the API docs), that names a figure. ``gettext_lazy(...) %
    params`` would translate it at import, in no one's language."""
    return lazy(filled_text, str)(message, params)


class TranslatedCommand(BaseCommand):
    """A management command whose ``help`` is an English text wrapped in ``gettext_lazy``: ``manage.py <command>
    --help`` shows it in the active language (the registry's, ``LANGUAGE_CODE``, unless one is activated).
    argparse needs a ``str`` for a parser's description, so the text is translated when the parser is made.
    Arguments' help is ``gettext``'d in ``add_arguments``, which runs then too."""

    help: str | Promise = ""  # type: ignore[assignment]  # a lazy text here, a str once the parser is made

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)
