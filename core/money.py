"""Money as people and clients read it: fen (the integer the ledger keeps) as a yuan decimal string.

Kept apart from the API layer so services can word their refusals with it.
"""

from __future__ import annotations

from typing import Protocol


class _Asset(Protocol):
    @property
    def is_cash(self) -> bool: ...


def fen_to_str(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def amount(asset: _Asset, value: int) -> int | str:
    """An amount of an asset as the API shows it: units as integers, cash as a decimal string."""
    return fen_to_str(value) if asset.is_cash else value
