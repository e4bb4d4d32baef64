"""Risk reads for the market rulebooks: a participant's position in an instrument and its position limit.

A position is what the participant holds of the instrument (every account's total), plus what it has bought
and not yet received (unsettled buys), plus what its open buy orders may still buy. The limit is the
rulebook's: none, a fixed number of tonnes, or (Beijing's pilot) the entity's allocation of the instrument
plus a number of tonnes; participants without an allocation get that number.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Count, F, Sum

from core import clock
from exchange.errors import RulebookNotFound
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
from exchange.selectors.prices import previous_close
from exchange.selectors.rulebooks import rulebook_for


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
    unsettled = Trade.objects.filter(  # type: ignore[misc]  # TradeManager annotates it; django-stubs see only fields
        asset=asset, buy_order__participant_id=participant_id, settlement_batch__isnull=True
    ).aggregate(q=Sum("quantity"))["q"]
    open_buys = Order.objects.filter(
        participant_id=participant_id, asset=asset, side=Side.BUY, status=OrderStatus.OPEN
    ).aggregate(q=Sum(F("quantity") - F("filled")))["q"]
    # Open buys of every mode: continuous orders, buy listings, block bids and auction bids are all orders.
    return int(held or 0) + int(unsettled or 0) + int(open_buys or 0)


def position_limit(participant_id: int, asset: Asset, rulebook: Rulebook) -> int | None:
    """The most the participant may hold of ``asset`` under the rulebook, or None without a limit."""
    if rulebook.position_limit_rule == PositionLimitRule.NONE or rulebook.position_limit_t is None:
        return None
    if rulebook.position_limit_rule == PositionLimitRule.FIXED:
        return rulebook.position_limit_t
    return allocation_of(participant_id, asset) + rulebook.position_limit_t


# --- reports for exchange staff -----------------------------------------------------------------------------
def large_holders(day: date | None = None) -> list[dict[str, object]]:
    """Accounts holding at least their market's large-holder threshold of an instrument, and when each first
    crossed it (the first posting that took the account's balance to the threshold or above)."""
    day = day or clock.trading_day()
    found: list[dict[str, object]] = []
    for asset in Asset.objects.filter(market__isnull=False).select_related("market").order_by("code"):
        try:
            threshold = rulebook_for(asset, day).large_holder_threshold_t
        except RulebookNotFound:
            continue
        if threshold is None:
            continue
        rows = (
            Balance.objects.filter(asset=asset, account__kind=AccountKind.HOLDING, total__gte=threshold)
            .select_related("account__participant")
            .order_by("-total")
        )
        for balance in rows:
            crossed = (
                Posting.objects.filter(account_id=balance.account_id, asset=asset, balance_after__gte=threshold)
                .order_by("id")
                .values_list("transaction__created_at", flat=True)
                .first()
            )
            found.append(
                {
                    "market": asset.market.code if asset.market else "",
                    "asset": asset.code,
                    "account": balance.account.number,
                    "participant": getattr(balance.account.participant, "name", ""),
                    "holding": balance.total,
                    "threshold": threshold,
                    "crossed_at": crossed,
                }
            )
    return found


def trading_alerts(day: date | None = None) -> list[dict[str, object]]:
    """Abnormal-trading alerts of a trading day: trades between related participants (the same participant,
    or participants sharing a unified social credit code's registration prefix), repeated cancel-replace (a
    participant's cancellations on an instrument reaching the rulebook's count) and trades far from the
    previous close (beyond the rulebook's deviation)."""
    day = day or clock.trading_day()
    alerts: list[dict[str, object]] = []
    books: dict[int, Rulebook | None] = {}

    def book_of(asset: Asset) -> Rulebook | None:
        if asset.pk not in books:
            try:
                books[asset.pk] = rulebook_for(asset, day)
            except RulebookNotFound:
                books[asset.pk] = None
        return books[asset.pk]

    trades = Trade.objects.filter(trading_day=day).select_related(
        "asset", "buy_order__participant", "sell_order__participant"
    )
    closes: dict[int, int | None] = {}
    for trade in trades.order_by("id"):
        buyer, seller = trade.buy_order.participant, trade.sell_order.participant
        if buyer.pk == seller.pk or buyer.uscc[:8] == seller.uscc[:8]:
            alerts.append(
                {
                    "kind": "related_parties",
                    "asset": trade.asset.code,
                    "trade": trade.pk,
                    "participants": [buyer.name, seller.name],
                }
            )
        book = book_of(trade.asset)
        if trade.asset_id not in closes:
            closes[trade.asset_id] = previous_close(trade.asset, day)
        close = closes[trade.asset_id]
        if book is not None and close:
            deviation = abs(trade.price_fen - close) * 10000 // close
            if deviation >= book.alert_price_deviation_bp:
                alerts.append(
                    {
                        "kind": "far_from_close",
                        "asset": trade.asset.code,
                        "trade": trade.pk,
                        "price_fen": trade.price_fen,
                        "previous_close_fen": close,
                        "deviation_bp": deviation,
                    }
                )
    cancels = (
        Order.objects.filter(trading_day=day, status=OrderStatus.CANCELLED, end_reason="cancelled")
        .values("participant_id", "participant__name", "asset_id")
        .annotate(n=Count("id"))
    )
    for row in cancels:
        asset = Asset.objects.get(pk=row["asset_id"])
        book = book_of(asset)
        if book is not None and row["n"] >= book.alert_cancel_count:
            alerts.append(
                {
                    "kind": "cancel_replace",
                    "asset": asset.code,
                    "participant": row["participant__name"],
                    "cancellations": row["n"],
                }
            )
    return alerts


__all__ = ["allocation_of", "large_holders", "position_limit", "position_of", "trading_alerts"]
