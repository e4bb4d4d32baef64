"""Demo trading bots: a market maker and a taker that keep the demo market trading on its own.

They are ordinary API clients (``exchange.client``) with their own demo tokens (``seed_demo`` creates them),
run as daemon threads by ``manage.py serve`` and talking HTTP to that same server. They are quiet (they log
at DEBUG on ``greenledger.bots``), back off exponentially on any error, stay well inside the price band
(within ``MAX_DRIFT`` of the previous close they read from the book) and never raise out of their thread.

- The **market maker** keeps one small bid and one small ask on each asset around the middle of the book,
  re-quoting when its quotes are gone (filled, or cancelled at a session close) and cancelling quotes that
  have drifted too far from the middle. It learns of its fills from the live event stream
  (``Client.events``: ``order.filled``, ``order.expired``, ...), keeps its open quotes from those events
  instead of polling its orders, and re-quotes at once when a quote fills.
- The **taker** now and then buys at the best ask or sells at the best bid a small quantity, so trades
  happen, and counts its fills from the stream. Trades settle by the registry's settlement schedule after
  the close, or an on-demand ``manage.py settle`` (closed trading days only).
- Both also trade by **listing agreement** where the market has it: the market maker keeps one listing on
  each side near the book's middle, and the taker picks the best listing of a side now and then. A market
  whose rulebook does not enable a mode answers ``mode_not_enabled``, which the bots take as "not here".
- **Block agreement**: now and then the market maker offers a block (the mode's minimum size) to the taker by
  name, at the previous close; the taker accepts or declines it. A block offered outside the block session
  (13:00-15:00 on the national markets) is refused with ``market_closed`` and tried again later.
- **One-way auction**: the market maker announces a small auction at a time, its window a few steps long, and
  closes it once the window has ended; the taker bids on auctions it did not announce.

Like the client, this module imports no Django.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from exchange.client import ApiError, Book, Client, ClientError

logger = logging.getLogger("greenledger.bots")

MAX_DRIFT = Decimal("0.03")  # quotes stay within 3% of the previous close (the listing band is 10%)
MAX_BACKOFF = 120.0
# Codes that mean "not now or not here" for a mode: passed over, tried again on a later step.
NOT_NOW = ("mode_not_enabled", "market_closed", "insufficient_available", "not_eligible", "position_limit")


def to_fen(price: str) -> int:
    return int(Decimal(price) * 100)


def to_price(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def clamp_to_band(fen: int, previous_close_fen: int) -> int:
    low = int(previous_close_fen * (1 - MAX_DRIFT)) + 1
    high = int(previous_close_fen * (1 + MAX_DRIFT))
    return min(max(fen, low), high)


def middle(book: Book) -> int | None:
    """The middle of the best bid and ask, else the one side there is, else the previous close (fen)."""
    best_bid = to_fen(book["bids"][0]["price"]) if book["bids"] else None
    best_ask = to_fen(book["asks"][0]["price"]) if book["asks"] else None
    if best_bid is not None and best_ask is not None:
        return (best_bid + best_ask) // 2
    if best_bid is not None or best_ask is not None:
        return best_bid if best_bid is not None else best_ask
    return to_fen(book["previous_close"]) if book["previous_close"] else None


class Bot:
    """A loop of ``step()`` calls: each returns how long to sleep; errors back off, nothing escapes."""

    name = "bot"

    def __init__(self, client: Client, assets: Sequence[str], *, interval: float = 20.0, seed: int | None = None):
        self.client = client
        self.assets = list(assets)
        self.interval = interval
        self.rng = random.Random(seed)
        self.failures = 0
        self.steps = 0
        self.wake = threading.Event()  # set by an event that calls for a step now
        self.streaming = False  # following its events on the stream (else it polls)
        self.fills: list[dict[str, Any]] = []  # the fill events seen (newest last, the last 100)

    @staticmethod
    def now() -> datetime:
        """The time auction windows are set and read by (the server's clock, which is the machine's)."""
        return datetime.now(UTC)

    def step(self) -> None:
        raise NotImplementedError

    #: The event types the bot reacts to (docs/events.md); none: it does not listen.
    reacts_to: tuple[str, ...] = ("order.filled",)

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "order.filled":
            self.fills = [*self.fills[-99:], event]
            logger.debug(
                "%s: filled %s t at %s on order %s",
                self.name,
                event["data"]["quantity"],
                event["data"]["price"],
                event["data"]["order"],
            )

    def listen(self, events: Client, stop: threading.Event) -> None:
        """Follow the bot's own events from now on (the stream resumes by itself); never raise."""
        while not stop.is_set():
            try:
                after = events.events_page(limit=1)["latest"]
                self.streaming = True
                for event in events.events(after=after, types=list(self.reacts_to), stop=stop.is_set):
                    self.on_event(event)
            except Exception:  # the stream's endpoint refused or failed: the bot goes on polling meanwhile
                self.streaming = False
                logger.debug("%s: event stream unavailable, retrying", self.name, exc_info=True)
                if stop.wait(MAX_BACKOFF / 4):
                    return

    def tick(self) -> float:
        """One step; return the seconds to wait before the next (longer after each failure in a row)."""
        try:
            self.step()
        except ClientError as exc:
            self.failures += 1
            logger.debug("%s: %s (%s), backing off", self.name, exc.code, exc.message)
        except Exception:  # a bot must never take the server down with it
            self.failures += 1
            logger.debug("%s: unexpected error, backing off", self.name, exc_info=True)
        else:
            self.failures = 0
        self.steps += 1
        jitter = self.rng.uniform(0.8, 1.2)
        if self.failures:
            return min(self.interval * (2 ** min(self.failures, 10)), MAX_BACKOFF) * jitter
        return self.interval * jitter

    def run(self, stop: threading.Event, *, startup_delay: float = 2.0) -> None:
        if stop.wait(startup_delay):
            return
        while not stop.is_set():
            deadline = time.monotonic() + self.tick()
            # Until the next step is due, an event asks for one (wake), or the bots stop.
            while not (stop.is_set() or self.wake.is_set()) and time.monotonic() < deadline:
                self.wake.wait(min(0.5, max(deadline - time.monotonic(), 0)))
            self.wake.clear()


class MarketMaker(Bot):
    name = "market-maker"

    def __init__(
        self,
        *args: object,
        spread_fen: int = 20,
        quantity: tuple[int, int] = (100, 500),
        counterparty: int | None = None,
        blocks: dict[str, int] | None = None,
        auction_assets: Sequence[str] = (),
        **kwargs: object,
    ):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spread_fen = spread_fen
        self.quantity = quantity
        self.counterparty = counterparty  # the participant its block offers name (the taker's)
        self.blocks = dict(blocks or {})  # asset -> the block size it offers (the mode's minimum)
        self.auction_assets = list(auction_assets)
        # Open quotes by order id (asset, side, price), kept from the stream; read from the API once first.
        self.quotes: dict[int, dict[str, Any]] | None = None
        self.lock = threading.Lock()

    reacts_to = ("order.accepted", "order.filled", "order.cancelled", "order.expired")

    def on_event(self, event: dict[str, Any]) -> None:
        super().on_event(event)
        data = event["data"]
        with self.lock:
            if self.quotes is None:
                return
            if event["type"] == "order.accepted":
                if data.get("trading_mode", "continuous") != "continuous":
                    return  # listings are list()'s, read from the API
                self.quotes[data["order"]] = {"asset": data["asset"], "side": data["side"], "price": data["price"]}
                return
            if event["type"] == "order.filled" and data.get("order_status") == "open":
                return  # partly filled: the quote stands
            self.quotes.pop(data["order"], None)
        self.wake.set()  # a quote is gone: quote again now

    def step(self) -> None:
        with self.lock:
            if self.quotes is None or not self.streaming:  # not following the stream: read them
                self.quotes = {
                    o["id"]: {"asset": o["asset"], "side": o["side"], "price": o["price"]}
                    for asset in self.assets
                    for o in self.client.orders(status="open", asset=asset, limit=50)
                    if o.get("trading_mode", "continuous") == "continuous"
                }
        for asset in self.assets:
            self.quote(asset)
            self.list(asset)
        if self.counterparty is not None and self.blocks and self.rng.random() < 0.3:
            self.offer_block(self.rng.choice(sorted(self.blocks)))
        if self.auction_assets:
            self.auction(self.rng.choice(self.auction_assets))

    def offer_block(self, asset: str) -> None:
        """Offer a block of the mode's minimum size to the named counterparty, unless one is still open."""
        mine = set(self.client.me()["accounts"])
        if any(o["account"] in mine and o["status"] == "open" for o in self.client.blocks()):
            return
        book = self.client.book(asset)
        if not book["previous_close"]:
            return
        try:
            self.client.block_offer(
                asset=asset,
                side="sell",
                price=book["previous_close"],
                quantity=self.blocks[asset],
                counterparty=self.counterparty,
            )
        except ApiError as exc:
            if exc.code not in NOT_NOW:
                raise
            logger.debug("%s: %s offering a block of %s", self.name, exc.code, asset)

    def auction(self, asset: str) -> None:
        """Close its auctions whose window has ended; announce a small one when none of its own is open."""
        me = self.client.me()["participant"]["id"]
        now = self.now()
        open_ones = [a for a in self.client.auctions() if a["initiator"] == me and a["status"] == "open"]
        running = False
        for auction in open_ones:
            if datetime.fromisoformat(auction["closes_at"]) <= now:
                self.client.auction_close(auction["id"])
            else:
                running = True
        if running:
            return
        book = self.client.book(asset)
        if not book["previous_close"]:
            return
        window = max(self.interval * 3, 1.0)
        try:
            self.client.auction_announce(
                asset=asset,
                quantity=self.rng.randint(*self.quantity) // 10 * 10,
                reserve_price=to_price(to_fen(book["previous_close"]) * 99 // 100),
                opens_at=now.isoformat(),
                closes_at=(now + timedelta(seconds=window)).isoformat(),
            )
        except ApiError as exc:
            if exc.code not in NOT_NOW:
                raise
            logger.debug("%s: %s announcing an auction of %s", self.name, exc.code, asset)

    def list(self, asset: str) -> None:
        """Keep one listing (listing agreement) on each side near the middle of the book."""
        book = self.client.book(asset)
        if not book["previous_close"]:
            return
        close = to_fen(book["previous_close"])
        mid = clamp_to_band((middle(book) or close) + self.rng.randint(-5, 5), close)
        mine = [
            o for o in self.client.orders(status="open", asset=asset, limit=50) if o.get("trading_mode") == "listing"
        ]
        for side in ("buy", "sell"):
            if any(o["side"] == side for o in mine):
                continue
            price = clamp_to_band(mid - self.spread_fen if side == "buy" else mid + self.spread_fen, close)
            quantity = self.rng.randint(*self.quantity) // 10 * 10
            try:
                self.client.post_listing(asset=asset, side=side, price=to_price(price), quantity=quantity)
            except ApiError as exc:
                if exc.code != "mode_not_enabled":
                    raise

    def quote(self, asset: str) -> None:
        book = self.client.book(asset)
        if not book["previous_close"]:
            return
        close = to_fen(book["previous_close"])
        mid = middle(book) or close
        mid = clamp_to_band(mid + self.rng.randint(-5, 5), close)
        with self.lock:
            mine = [{"id": k, **v} for k, v in (self.quotes or {}).items() if v["asset"] == asset]
        for side in ("buy", "sell"):
            wanted = mid - self.spread_fen // 2 if side == "buy" else mid + self.spread_fen // 2
            wanted = clamp_to_band(wanted, close)
            quotes = [o for o in mine if o["side"] == side]
            for order in list(quotes):
                if abs(to_fen(order["price"]) - wanted) > 3 * self.spread_fen:
                    self.client.cancel_order(order["id"])
                    quotes.remove(order)
                    with self.lock:
                        (self.quotes or {}).pop(order["id"], None)
            if not quotes:
                placed = self.client.place_order(
                    asset=asset,
                    side=side,
                    price=to_price(wanted),
                    quantity=self.rng.randint(*self.quantity) // 10 * 10,
                )
                made = placed["order"]
                if made["status"] == "open":  # the stream says so too; this saves a step on a slow stream
                    with self.lock:
                        if self.quotes is not None:
                            self.quotes[made["id"]] = {"asset": asset, "side": side, "price": made["price"]}


class Taker(Bot):
    name = "taker"

    def __init__(self, *args: object, quantity: tuple[int, int] = (10, 200), **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.quantity = quantity

    def step(self) -> None:
        self.answer_blocks()
        self.bid()
        asset = self.rng.choice(self.assets)
        side = self.rng.choice(("buy", "sell"))
        if self.rng.random() < 0.5:
            self.pick(asset, side)
            return
        book = self.client.book(asset)
        levels = book["asks"] if side == "buy" else book["bids"]
        if not levels or not book["previous_close"]:
            return
        best = levels[0]
        price = to_fen(best["price"])
        if price != clamp_to_band(price, to_fen(book["previous_close"])):
            return  # the best price has run away from the close: let the market maker come back first
        quantity = min(best["quantity"], self.rng.randint(*self.quantity))
        try:
            self.client.place_order(asset=asset, side=side, price=best["price"], quantity=quantity)  # type: ignore[arg-type]
        except ApiError as exc:
            if exc.code != "insufficient_available":
                raise
            # Out of cash or units until the next settlement: try the other side next time.
            logger.debug("taker: %s on %s %s", exc.code, side, asset)

    def answer_blocks(self) -> None:
        """Accept or decline (about one in two) each open block offer of another participant."""
        mine = set(self.client.me()["accounts"])
        for offer in self.client.blocks():
            if offer["account"] in mine or offer["status"] != "open":
                continue
            try:
                if self.rng.random() < 0.5:
                    self.client.block_accept(offer["id"])
                else:
                    self.client.block_decline(offer["id"])
            except ApiError as exc:
                if exc.code not in (*NOT_NOW, "listing_not_available", "offer_not_found"):
                    raise
                logger.debug("%s: %s answering block offer %s", self.name, exc.code, offer["id"])

    def bid(self) -> None:
        """Bid once, a little over the reserve, on each open auction of another participant in its window."""
        me = self.client.me()["participant"]["id"]
        now = self.now()
        bid_on = {o["client_order_id"] for o in self.client.orders(status="open", limit=50)}
        for auction in self.client.auctions():
            if auction["initiator"] == me or auction["status"] != "open":
                continue
            if not datetime.fromisoformat(auction["opens_at"]) <= now < datetime.fromisoformat(auction["closes_at"]):
                continue
            key = f"bot-bid-{auction['id']}"
            if key in bid_on:
                continue
            # One bid an auction under one key: the same price and quantity if the step is run again.
            price = to_price(to_fen(auction["reserve_price"]) + auction["id"] % 20)
            quantity = max(10, min(auction["quantity"], self.quantity[1]) // 10 * 10)
            try:
                self.client.auction_bid(auction["id"], price=price, quantity=quantity, idempotency_key=key)
            except ApiError as exc:
                if exc.code not in (*NOT_NOW, "auction_not_open"):
                    raise
                logger.debug("%s: %s bidding in auction %s", self.name, exc.code, auction["id"])

    def pick(self, asset: str, side: str) -> None:
        """Pick the best listing of the other side (listing agreement), a small part of it if it allows."""
        try:
            book = self.client.listing_book(asset)
        except ApiError as exc:
            if exc.code != "mode_not_enabled":
                raise
            return
        levels = book["asks"] if side == "buy" else book["bids"]
        if not levels:
            return
        listing = levels[0]["listings"][0]
        quantity = min(listing["quantity"], self.rng.randint(*self.quantity)) if listing["partial_allowed"] else None
        try:
            self.client.pick(listing["id"], quantity=quantity)
        except ApiError as exc:
            if exc.code not in ("insufficient_available", "listing_not_available", "own_listing"):
                raise
            logger.debug("taker: %s picking listing %s", exc.code, listing["id"])


def start_bots(
    url: str,
    tokens: dict[str, str],
    *,
    assets: Sequence[str] = ("CEA-2024", "CEA-2025", "BEA-2025"),
    blocks: dict[str, int] | None = None,
    auction_assets: Sequence[str] = ("CEA-2025",),
    interval: float = 20.0,
    stop: threading.Event | None = None,
) -> tuple[threading.Event, list[threading.Thread]]:
    """Start the market maker (``tokens["maker"]``) and the taker (``tokens["taker"]``) as daemon threads.

    The market maker names the taker in its block offers (the taker's participant, read once from the API), of
    the sizes ``blocks`` gives per instrument (the caller reads each block agreement's minimum from the rulebook
    in effect, ``exchange.selectors.rulebooks.block_minimums``); none: it offers no blocks."""
    stop = stop or threading.Event()
    try:
        with Client(url, tokens["taker"], retries=2) as taker:
            counterparty: int | None = taker.me()["participant"]["id"]
    except ClientError:  # the server is not answering yet: no block offers this run
        counterparty = None
    bots: list[Bot] = [
        MarketMaker(
            Client(url, tokens["maker"], retries=2),
            assets,
            interval=interval,
            seed=1,
            counterparty=counterparty,
            blocks=blocks,
            auction_assets=auction_assets,
        ),
        Taker(Client(url, tokens["taker"], retries=2), assets, interval=interval * 1.5, seed=2),
    ]
    threads = [threading.Thread(target=bot.run, args=(stop,), name=f"bot-{bot.name}", daemon=True) for bot in bots]
    # Each bot follows its own fills on the live stream, with a client of its own.
    threads += [
        threading.Thread(
            target=bot.listen,
            args=(Client(url, tokens[role], retries=2), stop),
            name=f"bot-{bot.name}-events",
            daemon=True,
        )
        for role, bot in zip(("maker", "taker"), bots, strict=True)
    ]
    for thread in threads:
        thread.start()
    return stop, threads
