"""Sentences people read: a name that ends in a full stop ("Jingneng Thermal Power Co.") ends the sentence
with that one stop, never two ("Co..")."""

from __future__ import annotations


def sentence(text: object) -> str:
    """The text ending in exactly one full stop (or its own ?, !, or the Chinese 。)."""
    text = str(text).rstrip()
    return text if text.endswith((".", "?", "!", "\u3002", "\uff1f", "\uff01")) else f"{text}."
