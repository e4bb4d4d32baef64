"""A typed Python client for greenledger's REST API (``/api/v1/``), importable without Django.

Every call that moves value (transfer, retire, place an order, settle) sends an ``Idempotency-Key``:
one drawn per call unless the caller gives one, and the *same* key on every retry, so a retried request
is answered with the first result instead of moving value twice. Connection errors, 5xx and 429 answers
are retried with exponential backoff (429 waits for ``Retry-After``); everything else the server refuses
is raised at once as :class:`ApiError` carrying the error body's ``code``, ``message`` and ``details``
and the HTTP ``status``.

    with Client("http://127.0.0.1:8000", token="gl_demo_jingneng-trader-demo-token") as gl:
        for line in gl.holdings():
            print(line["asset"], line["available"])
        gl.place_order(asset="CEA-2024", side="buy", price="88.30", quantity=100)

Money goes both ways as decimal strings with two places ("88.30"); quantities are whole tonnes.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypedDict, cast

import httpx

from exchange.audit_proof import ProofProblem, compare_with_kept, signature_problem
from exchange.audit_proof import verify_proof as _verify_proof

__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "ConnectionFailed",
]

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


# --- errors ------------------------------------------------------------------------------------------------
class ClientError(Exception):
    """A request that did not succeed: ``code``, ``status`` (0 when no answer came), ``message``, ``details``."""

    def __init__(self, code: str, message: str, *, status: int = 0, details: Mapping[str, Any] | None = None) -> None:
        self.code = code
        self.status = status
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(f"{code}: {message}")


class ApiError(ClientError):
    """The server refused the request (its JSON error body)."""


class ConnectionFailed(ClientError):
    """No answer from the server after every retry."""


# --- what the API returns (the fields a client relies on) -------------------------------------------------
class Participant(TypedDict):
    id: int
    name: str
    kind: str


class Me(TypedDict):
    user: str
    role: str
    participant: Participant
    accounts: list[str]


class Holding(TypedDict):
    asset: str
    asset_kind: str
    total: int | str
    held: int | str
    available: int | str


class BookLevel(TypedDict):
    price: str
    quantity: int
    orders: int


class Book(TypedDict):
    asset: str
    mode: str
    bids: list[BookLevel]
    asks: list[BookLevel]
    previous_close: str | None


class Trade(TypedDict, total=False):
    id: int
    asset: str
    mode: str
    price: str
    quantity: int
    turnover: str
    aggressor: str
    trading_day: str
    created_at: str
    settled: bool
    side: str
    fee: str
    order: int


class Order(TypedDict):
    id: int
    client_order_id: str
    account: str
    asset: str
    side: str
    mode: str
    price: str
    quantity: int
    filled: int
    remaining: int
    status: str
    end_reason: str
    trading_day: str
    created_at: str


class Placed(TypedDict):
    order: Order
    trades: list[Trade]


Side = Literal["buy", "sell"]


# --- the client ---------------------------------------------------------------------------------------------
class Client:
    """One server, one token. Safe to share between threads (``httpx.Client`` is)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.25,
        user_agent: str = "greenledger-client/1",
        transport: httpx.BaseTransport | None = None,
        language: str | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        if language:  # the server's error messages in this language (e.g. "zh-hans", "en")
            headers["Accept-Language"] = language
        if token:
            headers["Authorization"] = f"Token {token}"
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._me: Me | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request, retrying transient failures; return the decoded JSON body (None for no body)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, params=clean, json=json, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise ConnectionFailed("connection_failed", f"{method} {path}: {exc!r}") from exc
                self._sleep(attempt, None)
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self._sleep(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            return self._decode(response)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        time.sleep(delay)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.is_success:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise ApiError(
                str(error.get("code", "error")),
                str(error.get("message", "")),
                status=response.status_code,
                details=error.get("details") or {},
            )
        raise ApiError("http_error", f"HTTP {response.status_code}: {response.text[:200]}", status=response.status_code)

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> Iterator[Any]:
        """Every item of a list endpoint, following its cursor (``next``) links, at most ``limit``."""
        body = self.request("GET", path, params=params)
        count = 0
        while True:
            items = body if isinstance(body, list) else body.get("results", [])
            for item in items:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item
            following = body.get("next") if isinstance(body, dict) else None
            if not following:
                return
            body = self.request("GET", following)

    @staticmethod
    def new_key() -> str:
        return str(uuid.uuid4())

    def post(self, path: str, *, json: Any = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """POST a request that changes something, under ``idempotency_key`` (a new key unless given): sent again
        after a failure it has its effect once. Returns the decoded object."""
        return cast(
            dict[str, Any], self.request("POST", path, json=json, idempotency_key=idempotency_key or self.new_key())
        )

    # --- who am I ------------------------------------------------------------------------------------------
    def me(self) -> Me:
        """The token's user, role, participant and holding accounts (cached for the client's life)."""
        if self._me is None:
            self._me = cast(Me, self.request("GET", "/api/v1/"))
        return self._me

    def default_account(self) -> str:
        accounts = self.me()["accounts"]
        if not accounts:
            raise ClientError("no_account", "Your participant has no holding account.")
        return accounts[0]

    def accounts(self) -> list[dict[str, Any]]:
        return list(self.paginate("/api/v1/accounts"))

    # --- holdings and statements ---------------------------------------------------------------------------
    def holdings(self, account: str | None = None) -> list[Holding]:
        number = account or self.default_account()
        return cast(list[Holding], self.request("GET", f"/api/v1/accounts/{number}/holdings"))

    def statement(
        self, account: str | None = None, *, asset: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        number = account or self.default_account()
        return list(self.paginate(f"/api/v1/accounts/{number}/statement", {"asset": asset}, limit=limit))

    # --- moving units ----------------------------------------------------------------------------------------
    def transfer(
        self,
        *,
        destination: str,
        asset: str,
        quantity: int,
        source: str | None = None,
        memo: str = "",
        serials: tuple[int, int] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Transfer units: the transaction (201), or, to an account not on your trusted list when the
        registry delays those, ``{"pending_transfer": {...}, "message": ...}`` (202): held now, moved later."""
        body: dict[str, Any] = {
            "source": source or self.default_account(),
            "destination": destination,
            "asset": asset,
            "quantity": quantity,
            "memo": memo,
        }
        if serials:
            body["serials"] = list(serials)
        return self.post("/api/v1/transfers", json=body, idempotency_key=idempotency_key)

    def non_trade_transfer(
        self,
        *,
        destination: str,
        asset: str,
        quantity: int,
        legal_basis: str,
        document_sha256: str,
        legal_basis_text: str = "",
        source: str | None = None,
        memo: str = "",
        serials: tuple[int, int] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Apply for a non-trade transfer (非交易过户) where the market moves units between participants only
        so: ``legal_basis`` is judicial_ruling, merger_split, inheritance, dissolution or other (then stated in
        ``legal_basis_text``). The units are held at once; two registry officers decide."""
        body: dict[str, Any] = {
            "source": source or self.default_account(),
            "destination": destination,
            "asset": asset,
            "quantity": quantity,
            "legal_basis": legal_basis,
            "legal_basis_text": legal_basis_text,
            "document_sha256": document_sha256,
            "memo": memo,
        }
        if serials:
            body["serials"] = list(serials)
        return self.post("/api/v1/non-trade-transfers", json=body, idempotency_key=idempotency_key)

    def non_trade_transfers(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Your non-trade transfers, newest first."""
        return list(self.paginate("/api/v1/non-trade-transfers", limit=limit))

    def ccer_apply(self, *, idempotency_key: str | None = None, **application: Any) -> dict[str, Any]:
        """Apply to register a CCER project (code, name, project_type, methodology, location, start_date,
        crediting_start, crediting_end as ISO dates, validation_body, validation_report_sha256)."""
        return self.post("/api/v1/ccer/applications", json=application, idempotency_key=idempotency_key)

    def ccer_claim(self, *, idempotency_key: str | None = None, **claim: Any) -> dict[str, Any]:
        """Claim a project's verified reductions (project, vintage, monitoring_start, monitoring_end, quantity,
        verification_body, verification_report_sha256)."""
        return self.post("/api/v1/ccer/claims", json=claim, idempotency_key=idempotency_key)

    def ccer_applications(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """CCER project applications, newest first (published for comment, so every member reads them)."""
        return list(self.paginate("/api/v1/ccer/applications", limit=limit))

    def ccer_claims(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """CCER reduction claims, newest first, each with its status and, above the four-eyes threshold, the
        approval request it waits on."""
        return list(self.paginate("/api/v1/ccer/claims", limit=limit))

    def ccer_comment(self, *, application: int | None = None, claim: int | None = None, text: str) -> dict[str, Any]:
        """Comment on an application or a claim during its publicity window."""
        path = (
            f"/api/v1/ccer/applications/{int(application)}/comments"
            if application is not None
            else (f"/api/v1/ccer/claims/{int(claim or 0)}/comments")
        )
        return self.post(path, json={"text": text})

    def pending_transfers(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Your transfers waiting for their delay to pass (newest first)."""
        return list(self.paginate("/api/v1/transfers/pending", limit=limit))

    def cancel_pending_transfer(self, pending_id: int) -> dict[str, Any]:
        """Cancel a pending transfer: its units are released."""
        return cast(dict[str, Any], self.request("POST", f"/api/v1/transfers/pending/{int(pending_id)}/cancel"))

    def retire(
        self,
        *,
        asset: str,
        quantity: int,
        beneficiary: str,
        reason: str,
        account: str | None = None,
        serials: tuple[int, int] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "account": account or self.default_account(),
            "asset": asset,
            "quantity": quantity,
            "beneficiary": beneficiary,
            "reason": reason,
        }
        if serials:
            body["serials"] = list(serials)
        return self.post("/api/v1/retirements", json=body, idempotency_key=idempotency_key)

    # --- compliance (履约) ------------------------------------------------------------------------------------
    def obligations(self, *, year: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Your obligations (status, verified, surrendered, remaining, deduction, penalty range)."""
        return list(self.paginate("/api/v1/compliance/obligations", {"year": year}, limit=limit))

    def surrender(
        self,
        *,
        year: int,
        items: Sequence[tuple[str, int]],
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Surrender units for your obligation of ``year`` (also after the deadline while it is short)."""
        body = {
            "account": account or self.default_account(),
            "year": year,
            "items": [{"asset": asset, "quantity": quantity} for asset, quantity in items],
        }
        return self.post("/api/v1/compliance/surrenders", json=body, idempotency_key=idempotency_key)

    def carryover(self, year: int) -> dict[str, Any]:
        """Your carryover limit under plan year ``year``'s rule: net sales on the tape, limit, used, remaining."""
        participant = self.me()["participant"]["id"]
        return cast(
            dict[str, Any],
            self.request("GET", f"/api/v1/compliance/entities/{participant}/carryover", params={"year": year}),
        )

    # --- the market -----------------------------------------------------------------------------------------
    def place_order(
        self,
        *,
        asset: str,
        side: Side,
        price: str,
        quantity: int,
        account: str | None = None,
        mode: str = "listing",
        client_order_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Placed:
        """Place a limit order; it may trade at once (``trades``). The key doubles as the client order id."""
        key = idempotency_key or client_order_id or self.new_key()
        body = {
            "account": account or self.default_account(),
            "asset": asset,
            "side": side,
            "mode": mode,
            "price": str(price),
            "quantity": quantity,
            "client_order_id": client_order_id or key,
        }
        return cast(Placed, self.request("POST", "/api/v1/orders", json=body, idempotency_key=key))

    # --- listing agreement, block agreement, one-way auction ---------------------------------------------
    def _keyed(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> Any:
        """POST an order under ``idempotency_key`` (a new key unless given), its client order id the key unless
        the body names one."""
        key = idempotency_key or self.new_key()
        return self.post(
            path, json={**body, "client_order_id": body.get("client_order_id") or key}, idempotency_key=key
        )

    def post_listing(
        self,
        *,
        asset: str,
        side: Side,
        price: str,
        quantity: int,
        partial_allowed: bool = True,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Post a listing (listing agreement); it rests until picked, cancelled or the session's close."""
        body = {
            "account": account or self.default_account(),
            "asset": asset,
            "side": side,
            "price": str(price),
            "quantity": quantity,
            "partial_allowed": partial_allowed,
        }
        return cast(Order, self._keyed("/api/v1/listings", body, idempotency_key))

    def listing_book(self, asset: str) -> dict[str, Any]:
        """The best five price levels per side, each with its listings."""
        return cast(dict[str, Any], self.request("GET", f"/api/v1/market/{asset}/listing-book"))

    def pick(
        self,
        listing_id: int,
        *,
        quantity: int | None = None,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Placed:
        """Pick a listing (all of it, or ``quantity`` if it allows partial fills)."""
        body: dict[str, Any] = {"account": account or self.default_account()}
        if quantity is not None:
            body["quantity"] = quantity
        return cast(Placed, self._keyed(f"/api/v1/listings/{listing_id}/pick", body, idempotency_key))

    def pick_level(
        self,
        *,
        asset: str,
        side: Side,
        price: str,
        quantity: int,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Placed:
        """Pick ``quantity`` at a price level of the ``side`` listings (sell: buy from the asks), in time order."""
        body = {
            "account": account or self.default_account(),
            "asset": asset,
            "side": side,
            "price": str(price),
            "quantity": quantity,
        }
        return cast(Placed, self._keyed("/api/v1/listings/pick", body, idempotency_key))

    def block_offer(
        self,
        *,
        asset: str,
        side: Side,
        price: str,
        quantity: int,
        counterparty: int | None = None,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Offer a block to a named counterparty (participant id), or publicly without one."""
        body = {
            "account": account or self.default_account(),
            "asset": asset,
            "side": side,
            "price": str(price),
            "quantity": quantity,
            "counterparty": counterparty,
        }
        return cast(Order, self._keyed("/api/v1/blocks", body, idempotency_key))

    def blocks(self) -> list[Order]:
        """Open block offers: yours, addressed to you, and public ones."""
        return cast(list[Order], list(self.paginate("/api/v1/blocks")))

    def block_accept(self, offer_id: int, *, account: str | None = None, idempotency_key: str | None = None) -> Placed:
        body = {"account": account or self.default_account()}
        return cast(Placed, self._keyed(f"/api/v1/blocks/{offer_id}/accept", body, idempotency_key))

    def block_decline(self, offer_id: int, *, idempotency_key: str | None = None) -> Order:
        return cast(Order, self.post(f"/api/v1/blocks/{offer_id}/decline", idempotency_key=idempotency_key))

    def block_counter(
        self,
        offer_id: int,
        *,
        price: str,
        quantity: int | None = None,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        body: dict[str, Any] = {"account": account or self.default_account(), "price": str(price)}
        if quantity is not None:
            body["quantity"] = quantity
        return cast(Order, self._keyed(f"/api/v1/blocks/{offer_id}/counter", body, idempotency_key))

    def auction_announce(
        self,
        *,
        asset: str,
        quantity: int,
        reserve_price: str,
        opens_at: str,
        closes_at: str,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "account": account or self.default_account(),
            "asset": asset,
            "quantity": quantity,
            "reserve_price": str(reserve_price),
            "opens_at": opens_at,
            "closes_at": closes_at,
        }
        return cast(dict[str, Any], self._keyed("/api/v1/auctions", body, idempotency_key))

    def auctions(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], list(self.paginate("/api/v1/auctions")))

    def auction_bid(
        self,
        auction_id: int,
        *,
        price: str,
        quantity: int,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        body = {"account": account or self.default_account(), "price": str(price), "quantity": quantity}
        return cast(Order, self._keyed(f"/api/v1/auctions/{auction_id}/bids", body, idempotency_key))

    def auction_close(self, auction_id: int, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return self.post(f"/api/v1/auctions/{auction_id}/close", idempotency_key=idempotency_key)

    def rulebooks(self, market: str) -> list[dict[str, Any]]:
        """A market's rulebook versions, newest first (``in_effect`` marks today's)."""
        return cast(list[dict[str, Any]], self.request("GET", f"/api/v1/markets/{market}/rulebooks"))

    def rulebook_publish(
        self,
        market: str,
        *,
        effective_from: str,
        changes: dict[str, Any] | None = None,
        modes: list[dict[str, Any]] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Publish a new rulebook version (exchange or registry staff): the latest with ``changes`` applied."""
        body: dict[str, Any] = {"effective_from": effective_from, "changes": changes or {}}
        if modes is not None:
            body["modes"] = modes
        path = f"/api/v1/markets/{market}/rulebooks"
        return self.post(path, json=body, idempotency_key=idempotency_key)

    def quotes(self, *, market: str | None = None, asset: str | None = None, day: str | None = None) -> list[dict]:
        """Public daily quotes (no login needed)."""
        params = {k: v for k, v in {"market": market, "asset": asset, "day": day}.items() if v}
        return cast(list[dict], self.request("GET", "/api/v1/public/quotes", params=params))

    def cancel_order(self, order_id: int) -> Order:
        """Cancel the unfilled part of an open order (a retry after a lost answer may see ``order_not_open``)."""
        return cast(Order, self.request("POST", f"/api/v1/orders/{int(order_id)}/cancel"))

    def orders(
        self, *, status: str | None = None, asset: str | None = None, side: str | None = None, limit: int = 100
    ) -> list[Order]:
        params = {"status": status, "asset": asset, "side": side}
        return cast(list[Order], list(self.paginate("/api/v1/orders", params, limit=limit)))

    def book(self, asset: str, *, mode: str = "listing") -> Book:
        return cast(Book, self.request("GET", f"/api/v1/market/{asset}/book", params={"mode": mode}))

    def trades(self, *, asset: str | None = None, settled: bool | None = None, limit: int = 100) -> list[Trade]:
        """Your trades (with your side, fee and order), newest first."""
        params: dict[str, Any] = {"asset": asset}
        if settled is not None:
            params["settled"] = "true" if settled else "false"
        return cast(list[Trade], list(self.paginate("/api/v1/trades", params, limit=limit)))

    def market_trades(self, asset: str, *, limit: int = 100) -> list[Trade]:
        """The asset's public trade tape (no parties), newest first."""
        return cast(list[Trade], list(self.paginate(f"/api/v1/market/{asset}/trades", limit=limit)))

    def daily(self, asset: str, *, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]],
            self.request("GET", f"/api/v1/market/{asset}/daily", params={"start": start, "end": end}),
        )

    def settle(self, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Settle every unsettled trade now (exchange operator)."""
        return self.post("/api/v1/settlement/batches", idempotency_key=idempotency_key)

    # --- pledges -------------------------------------------------------------------------------------------
    # --- four eyes (registry users) -----------------------------------------------------------------------
    def approvals(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Approval requests, newest first (``status="pending"``: those waiting for a second registry user)."""
        return list(self.paginate("/api/v1/approvals", {"status": status}, limit=limit))

    def approve(self, approval_id: int, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Approve and carry out a request (a registry user other than the one who made it)."""
        return self.post(f"/api/v1/approvals/{int(approval_id)}/approve", idempotency_key=idempotency_key)

    def reject(self, approval_id: int, *, reason: str, idempotency_key: str | None = None) -> dict[str, Any]:
        return self.post(
            f"/api/v1/approvals/{int(approval_id)}/reject", json={"reason": reason}, idempotency_key=idempotency_key
        )

    def pledges(self, *, status: str | None = None, asset: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Pledges you borrow or lend under (overseers: all), newest first."""
        return list(self.paginate("/api/v1/pledges", {"status": status, "asset": asset}, limit=limit))

    def pledge(self, pk: int) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", f"/api/v1/pledges/{int(pk)}"))

    def pledge_step(
        self, pk: int, step: str, body: dict[str, Any] | None = None, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST one step on a pledge (``accept``, ``register``, ``enforce``, ``enforce/agree``, ...); the pledge
        as it is after it (``register`` above the four-eyes threshold: the approval request, 202)."""
        return self.post(f"/api/v1/pledges/{int(pk)}/{step}", json=body or {}, idempotency_key=idempotency_key)

    def pledge_confirm(self, pk: int, *, lender_account: str | None = None) -> dict[str, Any]:
        """The lender confirms the terms the borrower applied with (their digest, read from the pledge)."""
        body: dict[str, Any] = {"terms_digest": self.pledge(pk)["terms_digest"]}
        if lender_account:
            body["lender_account"] = lender_account
        return self.pledge_step(pk, "accept", body)

    def pledge_register(self, pk: int) -> dict[str, Any]:
        """The registry registers a joint application."""
        return self.pledge_step(pk, "register")

    def pledge_enforce(self, pk: int, *, method: str, price: str, costs: str = "0") -> dict[str, Any]:
        """The lender proposes a valuation (``agreement``) or sells the units (``sale``)."""
        return self.pledge_step(pk, "enforce", {"method": method, "price": price, "costs": costs})

    def pledge_court_order(
        self, pk: int, *, court_reference: str, document_sha256: str, units_to_lender: int, price: str
    ) -> dict[str, Any]:
        return self.pledge_step(
            pk,
            "court-order",
            {
                "court_reference": court_reference,
                "document_sha256": document_sha256,
                "units_to_lender": units_to_lender,
                "price": price,
            },
        )

    def pledge_compliance_release(
        self, pk: int, *, quantity: int, year: int, substitute_quantity: int = 0, substitute_cash: str = "0"
    ) -> dict[str, Any]:
        """Ask to surrender pledged units, pledging other units or holding cash (yuan) in their place."""
        return self.pledge_step(
            pk,
            "compliance-release",
            {
                "quantity": quantity,
                "year": year,
                "substitute_quantity": substitute_quantity,
                "substitute_cash": substitute_cash,
            },
        )

    # --- amendments of a registered pledge (top-up, partial release, extension) ----------------------------
    def pledge_amendments(self, pk: int) -> list[dict[str, Any]]:
        """The amendments of a pledge, oldest first."""
        return cast(list[dict[str, Any]], self.request("GET", f"/api/v1/pledges/{int(pk)}/amendments"))

    def pledge_amend(
        self,
        pk: int,
        *,
        kind: str,
        quantity: int = 0,
        serials: tuple[int, int] | None = None,
        maturity_date: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """The borrower applies to amend a registered pledge: ``top_up``, ``partial_release`` or ``extension``
        (``maturity_date`` as YYYY-MM-DD). Nothing changes until the registry registers it."""
        body: dict[str, Any] = {"kind": kind, "quantity": quantity}
        if serials:
            body["serials"] = list(serials)
        if maturity_date:
            body["maturity_date"] = maturity_date
        return self.pledge_step(pk, "amendments", body, idempotency_key=idempotency_key)

    def pledge_amendment_step(
        self, pk: int, number: int, step: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST ``confirm``, ``register`` or ``reject`` on amendment ``number`` of pledge ``pk`` (``register``
        above the four-eyes threshold: the approval request, 202)."""
        return self.pledge_step(pk, f"amendments/{int(number)}/{step}", body)

    def pledge_amendment_confirm(self, pk: int, number: int) -> dict[str, Any]:
        """The lender confirms the amendment's terms (their digest, read from the amendment)."""
        amendment = next((a for a in self.pledge_amendments(pk) if a["id"] == int(number)), None)
        # An amendment not of this pledge: the server answers its 404 (pledge_not_found) to the confirmation.
        digest = amendment["terms_digest"] if amendment else "0" * 64
        return self.pledge_amendment_step(pk, number, "confirm", {"terms_digest": digest})

    def pledge_exposure(self) -> list[dict[str, Any]]:
        """The lender's exposure summed over its open loans (overseers: every lender's)."""
        return cast(list[dict[str, Any]], self.request("GET", "/api/v1/pledges/exposure"))

    # --- the audit trail -----------------------------------------------------------------------------------
    def audit_proof(self, seq: int, *, to: int | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", f"/api/v1/audit/events/{int(seq)}/proof", params={"to": to}))

    def audit_public_keys(self) -> dict[str, Any]:
        """The keys that sign checkpoints, as the server publishes them (better: pin them out of band)."""
        return cast(dict[str, Any], self.request("GET", "/api/v1/audit/public-keys"))

    def checkpoint_feed(self, *, after: int = 0) -> list[dict[str, Any]]:
        """Every checkpoint after ``after``, oldest first, following the feed's pages."""
        docs: list[dict[str, Any]] = []
        page = cast(dict[str, Any], self.request("GET", "/api/v1/audit/checkpoints/feed", params={"after": after}))
        docs.extend(page["checkpoints"])
        while page.get("next"):
            after = int(docs[-1]["number"])
            page = cast(dict[str, Any], self.request("GET", "/api/v1/audit/checkpoints/feed", params={"after": after}))
            docs.extend(page["checkpoints"])
        return docs

    def verify_proof(
        self,
        seq: int,
        *,
        trusted_checkpoint_hash: str | None = None,
        public_keys: Mapping[str, str] | None = None,
        check_signatures: bool = True,
    ) -> dict[str, Any]:
        """Fetch event ``seq``'s inclusion proof and check it here, trusting nothing the server computed.

        With ``check_signatures`` each checkpoint's Ed25519 signature is checked too, against
        ``public_keys`` (key id -> base64 raw key, pinned out of band) or, without them, the keys the server
        publishes. That needs the ``cryptography`` package; the summary has ``"signed": True`` when they were.
        Raises ``exchange.audit_proof.ProofError`` if the proof does not hold; returns the checked summary.
        """
        proof = self.audit_proof(seq)
        keys: Mapping[str, str] | None = None
        if check_signatures and _have_cryptography():
            keys = public_keys if public_keys is not None else self.audit_public_keys()["keys"]
        return _verify_proof(proof, trusted_checkpoint_hash=trusted_checkpoint_hash, public_keys=keys)

    def compare_feed(
        self, kept: list[dict[str, Any]], *, public_keys: Mapping[str, str] | None = None
    ) -> list[tuple[int, ProofProblem]]:
        """Compare a kept copy of the feed with the feed now; with ``cryptography`` check the new checkpoints'
        signatures too. Returns ``(checkpoint number, what is wrong)``, empty when all holds."""
        current = {int(doc["number"]): doc for doc in self.checkpoint_feed()}
        problems = compare_with_kept(kept, current)
        if _have_cryptography():
            keys = public_keys if public_keys is not None else self.audit_public_keys()["keys"]
            for number, doc in sorted(current.items()):
                problem = signature_problem(doc, keys)
                if problem:
                    problems.append((number, problem))
        return problems

    # --- events and webhooks (docs/events.md) ----------------------------------------------------------------
    def events_page(self, *, after: int = 0, types: list[str] | None = None, limit: int = 100) -> dict[str, Any]:
        """One page of your participant's events numbered above ``after`` (``results``, ``next_after``,
        ``has_more``, ``latest``)."""
        params = {"after": after, "limit": limit, "types": ",".join(types) if types else None}
        return cast(dict[str, Any], self.request("GET", "/api/v1/events", params=params))

    def events(
        self,
        *,
        after: int = 0,
        types: list[str] | None = None,
        stop: Callable[[], bool] | None = None,
        reconnect_delay: float = 1.0,
        read_timeout: float = 60.0,
    ) -> Iterator[dict[str, Any]]:
        """Your participant's events as they happen, from the one after ``after``, for ever (or until ``stop()``).

        Reads the server-sent event stream and, when the connection drops (the server restarting, a network
        fault, no heartbeat within ``read_timeout``), connects again with ``Last-Event-ID`` set to the last
        event yielded: every event comes once, in order. Each event is a dict: ``id``, ``type``,
        ``created_at``, ``audit_seq``, ``data``.
        """
        last = after
        failures = 0
        params = {"types": ",".join(types)} if types else {}
        timeout = httpx.Timeout(10.0, read=read_timeout)
        while not (stop and stop()):
            try:
                with self._http.stream(
                    "GET",
                    "/api/v1/events/stream",
                    params=params,
                    headers={"Last-Event-ID": str(last), "Accept": "text/event-stream"},
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        if response.status_code not in RETRY_STATUSES:
                            self._decode(response)  # raises the ApiError
                        raise httpx.TransportError(f"HTTP {response.status_code}")
                    failures = 0
                    for event in _sse_events(response.iter_lines()):
                        if event is None:  # a heartbeat
                            if stop and stop():
                                return
                            continue
                        last = int(event["id"])
                        yield event
                        if stop and stop():
                            return
                # The server ended the stream (a WSGI worker answers one page): reconnect after a pause.
                time.sleep(reconnect_delay)
            except httpx.TransportError:
                failures += 1
                if stop and stop():
                    return
                time.sleep(min(reconnect_delay * failures, 10.0))

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self.paginate("/api/v1/webhooks"))

    def webhook_create(
        self, url: str, *, types: list[str] | None = None, description: str = "", idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Register a webhook endpoint; the answer carries its signing ``secret``, shown this once."""
        return self.post(
            "/api/v1/webhooks",
            json={"url": url, "types": types or [], "description": description},
            idempotency_key=idempotency_key,
        )

    def webhook_deliveries(self, endpoint_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.paginate(f"/api/v1/webhooks/{endpoint_id}/deliveries", limit=limit))


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any] | None]:
    """Parse a server-sent event stream: each event's ``data`` decoded as JSON, None for each comment."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield cast(dict[str, Any], json.loads("\n".join(data)))
                data = []
            continue
        if line.startswith(":"):
            yield None
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def _have_cryptography() -> bool:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True
