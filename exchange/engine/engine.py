"""The engine's loop: take requests in arrival order, apply them in one transaction, commit, then acknowledge.

Each request is applied with the trading services themselves (``order_place``, ``order_cancel``): eligibility,
session, band, tick, lot, position limit, the hold reserved before anything trades, the audit event. Each runs in
its own savepoint inside the batch's transaction, so a refused order changes nothing and doesn't disturb the
others; the order's client order id is claimed by its row in that same transaction. Matching reads the book in
memory (``book``). Only after the batch commits are its requests acknowledged: an order is never reported placed
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
from core.errors import DomainError
from exchange.engine import writer
from exchange.engine.book import Book
from exchange.engine.transport import Transport, transport
from exchange.faults import crash_point
from exchange.locks import release_book
from exchange.models import Account, Asset, MarketRules, Order, Trade

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
    """A refusal as the acknowledgement carries it: the error's class, and its message unless the default (so the
    client renders that in its own request's language)."""
    cls = type(exc)
    custom = exc.message if str(exc.message) != str(cls.default_message) else None
    return {
        "ok": False,
        "error": {
            "class": f"{cls.__module__}:{cls.__qualname__}",
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
        self.transport.mark_gone([asset_id])

    def rebuild(self, asset_ids: Iterable[int]) -> None:
        for asset_id in asset_ids:
            if asset_id in self.owned:
                self.books[asset_id] = Book.load(asset_id)

    def apply(self, requests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """One transaction: under each book's lock, check ownership, then apply each request in its savepoint."""
        replies = []
        assets = sorted({int(r["asset"]) for r in requests})
        with transaction.atomic():
            for asset_id in assets:
                if writer.check(self.owned[asset_id]):
                    self.books[asset_id] = Book.load(asset_id)
            instruments = Asset.objects.in_bulk(assets)  # one read per batch, not one per order
            for request in requests:
                replies.append((request["id"], self.apply_one(request, instruments[int(request["asset"])])))
        return replies

    def apply_one(self, request: dict[str, Any], asset: Asset) -> dict[str, Any]:
        from exchange.services.trading import OrderNotFound, order_cancel, order_place

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
                if request.get("replay"):
                    replayed = _replay(actor, args)
                    if replayed is not None:
                        book.discard()
                        return replayed
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


def _replay(actor: Actor, args: dict[str, Any]) -> dict[str, Any] | None:
    """A retried request (same Idempotency-Key) whose order committed before its acknowledgement was lost: the
    order as placed, with the trades it made when placed. None: no such order (place it now)."""
    if actor.participant_id is None:
        return None
    order = Order.objects.filter(participant_id=actor.participant_id, client_order_id=args["client_order_id"]).first()
    if order is None:
        return None
    same = (order.account_id, order.side, order.mode, order.price_fen, order.quantity) == (
        args["account"],
        args["side"],
        args["mode"],
        args["price_fen"],
        args["quantity"],
    )
    if not same:
        return None  # order_place refuses it: duplicate_client_order_id
    own = "buy_order_id" if order.side == "buy" else "sell_order_id"
    trades = Trade.objects.filter(**{own: order.pk}, aggressor=order.side).order_by("id").values_list("pk", flat=True)
    return {"ok": True, "order": order.pk, "trades": list(trades), "replayed": True}
