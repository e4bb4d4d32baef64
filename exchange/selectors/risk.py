"""Risk reads for the market rulebooks: a participant's position in an instrument and its position limit.

A position is what the participant holds of the instrument (every account's total), plus what it has bought
and not yet received (unsettled buys), plus what its open buy orders may still buy. The limit is the
rulebook's: none, a fixed number of tonnes, or (Beijing's pilot) the entity's allocation of the instrument
plus a number of tonnes; participants without an allocation get that number.
"""

from __future__ import annotations

from django.db.models import F, Sum

from exchange.models import (
    AccountKind,
    Asset,
    Balance,
    Order,
    OrderStatus,
    PositionLimitRule,
    Posting,
    Rulebook,
    Side,
    Trade,
    TransactionKind,
)
from exchange.selectors.market_modes import open_buy_commitments


def allocation_of(participant_id: int, asset: Asset) -> int:
    """Units of ``asset`` allocated to the participant (net of take-backs)."""
    total = Posting.objects.filter(
        transaction__kind=TransactionKind.ALLOCATION, account__participant_id=participant_id, asset=asset
    ).aggregate(q=Sum("quantity"))["q"]
    return int(total or 0)


def position_of(participant_id: int, asset: Asset) -> int:
    held = Balance.objects.filter(
        account__participant_id=participant_id, account__kind=AccountKind.HOLDING, asset=asset
    ).aggregate(q=Sum("total"))["q"]
    unsettled = Trade.objects.filter(
        asset=asset, buy_order__participant_id=participant_id, settlement_batch__isnull=True
    ).aggregate(q=Sum("quantity"))["q"]
    open_buys = Order.objects.filter(
        participant_id=participant_id, asset=asset, side=Side.BUY, status=OrderStatus.OPEN
    ).aggregate(q=Sum(F("quantity") - F("filled")))["q"]
    return int(held or 0) + int(unsettled or 0) + int(open_buys or 0) + open_buy_commitments(participant_id, asset)


def position_limit(participant_id: int, asset: Asset, rulebook: Rulebook) -> int | None:
    """The most the participant may hold of ``asset`` under the rulebook, or None without a limit."""
    if rulebook.position_limit_rule == PositionLimitRule.NONE or rulebook.position_limit_t is None:
        return None
    if rulebook.position_limit_rule == PositionLimitRule.FIXED:
        return rulebook.position_limit_t
    return allocation_of(participant_id, asset) + rulebook.position_limit_t


__all__ = ["allocation_of", "position_limit", "position_of"]
