"""The README's configuration table names every variable the settings read, and its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_table_names_every_variable_the_settings_read():
    settings = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r"""(?:environ\.get|env_bool|env_int)\(\s*["']([A-Z][A-Z0-9_]+)["']""", settings))
    readme = (ROOT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `")]

    assert len(read) > 20
    missing = sorted(name for name in read if not any(f"`{name}`" in row for row in table))
    assert missing == []


def test_readme_and_docs_links_resolve():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            path = (page.parent / target).resolve()
            if not path.exists():
                broken.append(f"{page.name} -> {target}")
    assert broken == []


def test_the_events_doc_describes_every_event_type_and_every_planned_one():
    from exchange.events import PLANNED, event_types

    text = (ROOT / "docs" / "events.md").read_text()
    missing = sorted(t for t in [*event_types(), *PLANNED] if f"`{t}`" not in text)
    assert missing == []
