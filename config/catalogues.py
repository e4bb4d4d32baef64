"""The translation catalogues (``locale/<language>/LC_MESSAGES/*.po``): compiled to ``.mo`` at install time
and checked for untranslated messages.

Compiling uses Babel, in pure Python, so ``make install`` works on a machine without GNU gettext; only
updating the catalogues from the code (``manage.py translations update``, Django's makemessages) needs
GNU gettext's xgettext and msgmerge. Run as ``python -m config.catalogues compile|missing``: it needs no
settings and no database.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

BASE_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = BASE_DIR / "locale"


@dataclass(frozen=True, slots=True)
class Untranslated:
    catalogue: Path
    msgid: str
    fuzzy: bool


def catalogues(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/*.po"))


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parent.parent.name)


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Write each catalogue's ``.mo`` beside it (fuzzy and empty translations left out, as msgfmt does)."""
    written = []
    for po in catalogues(locale_dir):
        mo = po.with_suffix(".mo")
        with mo.open("wb") as handle:
            write_mo(handle, _read(po), use_fuzzy=False)
        written.append(mo)
    return written


def untranslated(locale_dir: Path = LOCALE_DIR) -> list[Untranslated]:
    """Every message of every catalogue with no translation, or only a fuzzy one."""
    found = []
    for po in catalogues(locale_dir):
        for message in _read(po):
            if not message.id:
                continue
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy or not all(strings):
                found.append(Untranslated(po.relative_to(locale_dir.parent), msgid, message.fuzzy))
    return found


def msgids(path: Path) -> set[tuple[str | None, str]]:
    """(context, msgid) of every message in a catalogue."""
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in _read(path) if m.id}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "compile"
    if command == "compile":
        for mo in compile_all():
            print(f"compiled {mo.relative_to(BASE_DIR)}")
        return 0
    if command == "missing":
        missing = untranslated()
        for entry in missing:
            print(f"{entry.catalogue}: {'fuzzy' if entry.fuzzy else 'untranslated'}: {entry.msgid!r}")
        print(f"{len(missing)} message(s) without a translation")
        return 1 if missing else 0
    print("usage: python -m config.catalogues compile|missing", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
