"""Every refusal a person reads is marked for translation (docs/i18n.md): a domain error's default message is a
lazy translation, and no code raises a domain error with a message written as a plain or formatted string
(``InvalidInput(f"...")``), which no catalogue can translate. Read from the source, so a new one fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from django.utils.functional import Promise

from core.errors import DomainError, catalogue

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "accounts", "exchange")


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _untranslated(node: ast.expr) -> bool:
    """A message the catalogue can't know: a string literal, an f-string, or one built from them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _untranslated(node.left) or _untranslated(node.right)
    if isinstance(node, ast.IfExp):
        return _untranslated(node.body) or _untranslated(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return _untranslated(node.func.value)
    return False


def _raised_with_plain_messages(names: set[str]) -> list[str]:
    found = []
    for folder in APPS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if name not in names:
                    continue
                messages = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "message")]
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {name}({ast.unparse(m)[:60]})"
                    for m in messages
                    if _untranslated(m)
                ]
    return found


def test_every_domain_error_default_message_is_marked_for_translation():
    catalogue()  # the apps' error modules are imported with the apps
    plain = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in [DomainError, *_subclasses(DomainError)]
        if not isinstance(cls.default_message, Promise)
    ]

    assert plain == [], "wrap the default_message in translatable() (core.errors, imported as _)"


def test_no_domain_error_is_raised_with_a_message_not_marked_for_translation():
    names = {cls.__name__ for cls in [DomainError, *_subclasses(DomainError)]}

    assert _raised_with_plain_messages(names) == [], (
        "pass gettext('... %(name)s ...') % {...} (or a translatable constant), not a plain or f-string"
    )


def test_the_check_finds_a_plain_message():
    tree = ast.parse('InvalidInput(f"No account {n}.")\nInvalidInput("x" + y)\nInvalidInput(gettext("x"))')
    calls = [
        node.args[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and node.args and node.func.id == "InvalidInput"
    ]  # type: ignore[attr-defined]

    assert [_untranslated(arg) for arg in calls] == [True, True, False]
