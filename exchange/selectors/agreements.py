"""The listing agreement's book: the best price levels per side, each with its open listings in time order."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.models import Asset, Order, OrderStatus, Side, TradingMode


@dataclass(frozen=True, slots=True)
class ListingLevel:
    price_fen: int
    quantity: int
    listings: list[tuple[int, int, bool]]  # (order id, quantity left, partial fills allowed)


def listing_book(asset: Asset, levels: int = 5) -> dict[str, list[ListingLevel]]:
    """Bids highest first and asks lowest first, ``levels`` price levels each, with every listing of a level."""
    book: dict[str, list[ListingLevel]] = {}
    for name, side, ordering in (("bids", Side.BUY, "-price_fen"), ("asks", Side.SELL, "price_fen")):
        open_listings = Order.objects.filter(
            asset=asset, side=side, status=OrderStatus.OPEN, trading_mode=TradingMode.LISTING
        )
        prices = list(open_listings.order_by(ordering).values_list("price_fen", flat=True).distinct()[:levels])
        rows = (
            open_listings.filter(price_fen__in=prices)
            .order_by(ordering, "id")
            .values_list("price_fen", "id", "quantity", "filled", "partial_allowed")
        )
        by_price: dict[int, list[tuple[int, int, bool]]] = {p: [] for p in prices}
        for price, pk, quantity, filled, partial in rows:
            by_price[price].append((pk, quantity - filled, partial))
        book[name] = [ListingLevel(p, sum(q for _, q, _ in by_price[p]), by_price[p]) for p in prices]
    return book


__all__ = ["ListingLevel", "listing_book"]
