"""The engine's loop: take requests in arrival order, apply them in one transaction, commit, then acknowledge.

Orders are decided with the trading service's own rules by an ``OrderBatch`` (``exchange.services.order_batch``):
eligibility, session, band, tick, lot, position limit, the client order id, the hold reserved before anything
trades, from facts read once per batch and kept current in memory, so a refused order changes nothing and
doesn't disturb the others; the batch's rows and audit events are written with one statement per table. A cancel
(or a buy needing proceeds advanced) runs the service itself in a savepoint. Matching reads the book in memory
(``book``). Only after the batch commits are its requests acknowledged: an order is never reported placed
before it is durable, and a batch that fails is rolled back whole, its books rebuilt from the database and its
requests applied again one by one.

A crash between the commit and the acknowledgements loses only the acknowledgements: the client, hearing
nothing, answers 503 ``engine_unavailable``; its retry with the same Idempotency-Key finds the committed order
and answers it as placed (``replay``), so nothing is applied twice. Requests still queued wait for the restarted
engine, which rebuilds its books from the database first. A request whose client has stopped waiting
(``deadline`` passed) is not applied.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from accounts.actors import Actor
from core.db import pipeline
from core.errors import DomainError
from exchange.engine import writer
from exchange.engine.book import Book
from exchange.engine.transport import Transport, transport
from exchange.faults import crash_point
from exchange.locks import release_book
from exchange.models import Account, Asset, MarketRules, Order
from exchange.services.order_batch import RULES_SECONDS, KnownRules, NeedsService, OrderBatch

logger = logging.getLogger(__name__)

BATCH = 200
HEARTBEAT_SECONDS = 1.0
REFRESH_SECONDS = 5.0


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def continuous_assets(markets: Iterable[str] = ()) -> list[int]:
    """The listed instruments (of these markets; default all) whose books an engine owns."""
    listed = MarketRules.objects.filter(tradable=True)
    markets = list(markets)
    if markets:
        listed = listed.filter(asset__market__code__in=markets)
    return sorted(listed.values_list("asset_id", flat=True))


def refusal(exc: DomainError) -> dict[str, Any]:
    """A refusal as the acknowledgement carries it: the error's code (the client finds its class in the error
    catalogue), and its message unless the default (so the client renders that in its own request's language)."""
    cls = type(exc)
    custom = exc.message if str(exc.message) != str(cls.default_message) else None
    return {
        "ok": False,
        "error": {
            "code": exc.code,
            "message": str(custom) if custom is not None else None,
            "details": exc.details,
        },
    }


class Engine:
    def __init__(self, markets: Iterable[str] = (), *, via: Transport | None = None, batch: int = BATCH) -> None:
        self.markets = list(markets)
        self.transport = via or transport()
        self.batch = batch
        self.owner = owner_name()
        self.owned: dict[int, writer.Ownership] = {}
        self.books: dict[int, Book] = {}
        self.rules: dict[int, KnownRules] = {}  # the instruments' rules, kept between batches for a second
        self.instruments: dict[int, tuple[float, Asset]] = {}  # the instruments as read, and when (monotonic)
        self.stopping = threading.Event()
        self._refreshed = 0.0

    # --- ownership ---------------------------------------------------------------------------------------
    def claim(self) -> list[int]:
        """Own every book of the engine's markets that no other engine owns; rebuild each from the database."""
        taken = []
        for asset_id in continuous_assets(self.markets):
            if asset_id in self.owned:
                continue
            got = writer.take(asset_id, self.owner)
            if got is None:
                continue
            self.owned[asset_id] = got
            self.books[asset_id] = Book.load(asset_id)
            taken.append(asset_id)
        if taken:
            logger.info("engine owns books", extra={"assets": taken, "owner": self.owner})
        self.transport.mark_alive(list(self.owned), self.owner)
        self._refreshed = time.monotonic()
        return taken

    def heartbeat(self) -> None:
        if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
            self.claim()  # instruments listed since, or books another engine let go of

    def keep_alive(self) -> None:
        """Refresh the marks of the owned books every second from a thread of its own, so that a long batch
        doesn't make a live engine look gone (the marks vanish ALIVE_SECONDS after the process dies)."""
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            owned = list(self.owned)
            if owned:
                try:
                    self.transport.mark_alive(owned, self.owner)
                except Exception:
                    logger.exception("engine could not refresh its marks")

    def release(self) -> None:
        """Let go of every book (its queued requests wait for the next engine)."""
        self.transport.mark_gone(list(self.owned))
        for asset_id in self.owned:
            release_book(asset_id)
        self.owned.clear()
        self.books.clear()

    # --- the loop ------------------------------------------------------------------------------------------
    def run(self, *, once: bool = False) -> None:
        self.claim()
        beat = threading.Thread(target=self.keep_alive, name="engine-alive", daemon=True)
        beat.start()
        try:
            while not self.stopping.is_set():
                self.heartbeat()
                requests = self.transport.take(list(self.owned), self.batch, 0.2)
                if requests:
                    self.process(requests)
                if once and not requests:
                    return
        finally:
            self.stopping.set()
            beat.join(HEARTBEAT_SECONDS * 2)
            self.release()

    def stop(self) -> None:
        self.stopping.set()

    def process(self, requests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """Apply a batch, commit, acknowledge; return the acknowledgements sent."""
        now = time.time()
        live = [r for r in requests if r.get("deadline", now + 1) >= now and int(r["asset"]) in self.owned]
        replies: list[tuple[str, dict[str, Any]]] = [
            (r["id"], {"ok": False, "expired": True}) for r in requests if r not in live
        ]
        if live:
            try:
                replies += self.apply(live)
            except writer.LostBook as lost:
                self.forget(int(lost.args[0]))
                replies += [(r["id"], {"ok": False, "expired": True}) for r in live]
            except Exception:
                logger.exception("engine batch failed; applying its requests one by one")
                self.rebuild({int(r["asset"]) for r in live})
                for request in live:
                    try:
                        replies += self.apply([request])
                    except Exception:
                        logger.exception("engine request failed", extra={"request": request["id"]})
                        self.rebuild({int(request["asset"])})
                        replies.append((request["id"], {"ok": False, "failed": True}))
        crash_point("engine.committed")
        self.transport.ack(replies)
        return replies

    def forget(self, asset_id: int) -> None:
        self.owned.pop(asset_id, None)
        self.books.pop(asset_id, None)
        self.instruments.pop(asset_id, None)
        self.transport.mark_gone([asset_id])

    def rebuild(self, asset_ids: Iterable[int]) -> None:
        for asset_id in asset_ids:
            self.rules.pop(asset_id, None)
            self.instruments.pop(asset_id, None)
            if asset_id in self.owned:
                self.books[asset_id] = Book.load(asset_id)

    def read_instruments(self, asset_ids: Iterable[int]) -> None:
        """Read the instruments not read in the last ``RULES_SECONDS`` (one statement for all of them): a batch
        decides from the copy it keeps, as it does from the instruments' rules, and reads them again at once when
        something outside the engine noted a change to their books or rules."""
        moment = time.monotonic()
        due = [a for a in asset_ids if a not in self.instruments or moment - self.instruments[a][0] >= RULES_SECONDS]
        if due:
            self.instruments.update((pk, (moment, asset)) for pk, asset in Asset.objects.in_bulk(due).items())

    def apply(self, requests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """One transaction: under each book's lock, check ownership, then apply the requests in arrival order.

        Orders are decided and matched by ``OrderBatch`` from facts read once and written together at the end
        (``flush``); what it can't decide alone (a cancel, a buy that needs proceeds advanced) is applied with
        the trading service in a savepoint of its own, after the batch so far is written."""
        assets = sorted({int(r["asset"]) for r in requests})
        slots: list[dict[str, Any] | None] = []
        placed: dict[int, int] = {}  # slot -> order id, answered with its trades after the flush
        trades: dict[int, list[int]] = {}
        with transaction.atomic():
            with pipeline():  # the book locks, the ownership checks and the instruments due a read in one round trip
                checks = {asset_id: writer.check(self.owned[asset_id]) for asset_id in assets}
                self.read_instruments(assets)
                changed = [asset_id for asset_id, changed in checks.items() if changed()]
            for asset_id in changed:
                self.books[asset_id] = Book.load(asset_id)
                self.rules.pop(asset_id, None)
                self.instruments.pop(asset_id, None)
            if changed:
                self.read_instruments(changed)
            instruments = {asset_id: self.instruments[asset_id][1] for asset_id in assets}
            batch = OrderBatch(instruments, self.rules)
            for index, request in enumerate(requests):
                asset = instruments[int(request["asset"])]
                reply = None
                if request["op"] == "place":
                    if request.get("replay"):
                        reply = _replayed(Actor(**request["actor"]), request["args"])
                    if reply is None:
                        if not batch.facts_read:
                            batch.read_facts(requests[index:])
                        reply, order_id = self.decide(batch, request, asset)
                        if order_id is not None:
                            placed[index] = order_id
                if reply is None and index not in placed:
                    trades.update(batch.flush())
                    reply = self.apply_one(request, asset)
                slots.append(reply)
            trades.update(batch.flush())
        for index, order_id in placed.items():
            slots[index] = {"ok": True, "order": order_id, "trades": trades.get(order_id, []), "replayed": False}
        return [(r["id"], reply) for r, reply in zip(requests, slots, strict=True) if reply is not None]

    def decide(
        self, batch: OrderBatch, request: dict[str, Any], asset: Asset
    ) -> tuple[dict[str, Any] | None, int | None]:
        """Decide one order in the batch: (refusal, None), (None, order id) when taken, (None, None) when the
        trading service must apply it."""
        book = self.books[asset.pk]
        book.begin()
        try:
            with book.active():
                accepted = batch.place(Actor(**request["actor"]), asset, request["args"])
        except NeedsService:
            book.discard()
            return None, None
        except DomainError as exc:
            book.discard()
            return refusal(exc), None
        except BaseException:
            book.discard()
            raise
        book.keep(accepted.order)
        return None, accepted.order.pk

    def apply_one(self, request: dict[str, Any], asset: Asset) -> dict[str, Any]:
        """A request applied with the trading service itself, in a savepoint of its own."""
        from exchange.services.orders import OrderNotFound, order_cancel, order_place

        book = self.books[int(request["asset"])]
        actor = Actor(**request["actor"])
        args = request["args"]
        book.begin()
        try:
            with book.active():
                if request["op"] == "cancel":
                    order = Order.objects.filter(pk=args["order"], asset_id=book.asset_id).first()
                    if order is None:
                        raise OrderNotFound(details={"order": args["order"]})
                    cancelled = order_cancel(actor=actor, order=order)
                    book.discard()
                    book.remove(cancelled.pk)
                    return {"ok": True, "order": cancelled.pk}
                placed = order_place(
                    actor=actor,
                    account=Account.objects.get(pk=args["account"]),
                    asset=asset,
                    side=args["side"],
                    mode=args["mode"],
                    price_fen=args["price_fen"],
                    quantity=args["quantity"],
                    client_order_id=args["client_order_id"],
                )
        except DomainError as exc:
            book.discard()
            return refusal(exc)
        except BaseException:
            book.discard()
            raise
        book.keep(placed.order)
        return {"ok": True, "order": placed.order.pk, "trades": [t.pk for t in placed.trades], "replayed": False}


def _replayed(actor: Actor, args: dict[str, Any]) -> dict[str, Any] | None:
    """The acknowledgement of a retried request whose order committed before its acknowledgement was lost
    (``orders.order_replay``, the order service's one replay rule); None: place it now."""
    from exchange.services.orders import order_replay

    found = order_replay(
        actor,
        args["account"],
        args["side"],
        args["mode"],
        args["price_fen"],
        args["quantity"],
        args["client_order_id"],
    )
    if found is None:
        return None
    return {"ok": True, "order": found.order.pk, "trades": [t.pk for t in found.trades], "replayed": True}
