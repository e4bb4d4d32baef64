"""The SQL that PostgreSQL runs for greenledger (functions), one complete ``CREATE OR REPLACE`` per file.

Migrations load these files with ``sql_file``; nothing else holds a copy of their text. A change to a
function is an edit of its file plus a migration that loads the file again.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def sql_file(name: str) -> str:
    """The text of ``exchange/sql/<name>.sql``."""
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")
