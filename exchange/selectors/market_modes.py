"""Reads over the agreement and auction modes that other reads need (open commitments of a participant)."""

from __future__ import annotations

from exchange.models import Asset


def open_buy_commitments(participant_id: int, asset: Asset) -> int:
    """Tonnes the participant may still buy through open listings, block offers and auction bids."""
    return 0


__all__ = ["open_buy_commitments"]
