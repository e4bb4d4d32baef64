"""A small live market for client, CLI and bot tests: real HTTP against pytest-django's ``live_server``.

The clock is pinned inside a trading session for the test (it applies to the server's threads too).
Also a lossy proxy: a real HTTP server in front of the live server that forwards a request and then
answers 502 in its place, as a load balancer that lost the answer would, so retries are tested for real.
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from accounts.models import ParticipantKind
from core import clock
from exchange.models import Account
from tests.helpers.api import token_for
from tests.helpers.market import IN_SESSION, Exchange, make_exchange


@dataclass
class LiveMarket:
    url: str
    exchange: Exchange
    seller: Account
    buyer: Account
    seller_token: str
    buyer_token: str
    operator_token: str
    registry_token: str


def make_live_market(url: str) -> LiveMarket:
    """Seller with 10,000 t of CEA-2024 (reference price 80.00), buyer with 2,000,000.00 yuan."""
    exchange = make_exchange()
    _, seller, seller_actor = exchange.trader("Seller Steel", units=10_000)
    _, buyer, buyer_actor = exchange.trader("Buyer Power", cash_fen=200_000_000)
    return LiveMarket(
        url=url,
        exchange=exchange,
        seller=seller,
        buyer=buyer,
        seller_token=token_for(seller_actor),
        buyer_token=token_for(buyer_actor),
        operator_token=token_for(exchange.operator),  # type: ignore[arg-type]
        registry_token=token_for(exchange.market.registry_actor),
    )


@contextmanager
def in_session() -> Iterator[None]:
    clock.set_pinned(IN_SESSION)
    try:
        yield
    finally:
        clock.set_pinned(None)


@dataclass
class LossyProxy:
    upstream: str
    fail_first: int = 1
    drop_before_forwarding: bool = False
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                key = self.headers.get("Idempotency-Key")
                proxy.seen.append((self.command, self.path, key))
                failing = len(proxy.seen) <= proxy.fail_first
                status, payload, headers = 502, b"", {}
                if not (failing and proxy.drop_before_forwarding):
                    headers_out = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                    request = urllib.request.Request(  # noqa: S310 - the live server on 127.0.0.1
                        proxy.upstream + self.path, data=body, method=self.command, headers=headers_out
                    )
                    try:
                        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                            status, payload, headers = response.status, response.read(), dict(response.headers)
                    except urllib.error.HTTPError as error:
                        status, payload, headers = error.code, error.read(), dict(error.headers)
                if failing:
                    status, payload, headers = 502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}
                self.send_response(status)
                for name in ("Content-Type", "Retry-After"):
                    if name in headers:
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


__all__ = ["IN_SESSION", "LiveMarket", "LossyProxy", "ParticipantKind", "in_session", "make_live_market"]
