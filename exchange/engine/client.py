"""What the API calls: hand an order or a cancel to the engine owning its book and wait for the acknowledgement.

``enabled()`` says whether orders go through the engine (``GREENLEDGER["ORDER_ENGINE"]``; the test settings
place orders in the caller's own transaction unless a test turns the engine on). No engine owning the book, or
no acknowledgement within ``ACK_SECONDS``: ``EngineUnavailable`` (503 ``engine_unavailable``, ``Retry-After``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from typing import Any

from django.conf import settings

from accounts.actors import Actor
from core.errors import DomainError, catalogue, translatable
from exchange.engine.transport import transport
from exchange.errors import EngineUnavailable

ACK_SECONDS = 5.0
NO_ACK_MESSAGE = translatable(
    "The matching engine did not confirm the order in time; it may have been taken. Retry with the same "
    "Idempotency-Key: an order already taken is answered as placed, never placed twice."
)


def enabled() -> bool:
    return bool(settings.GREENLEDGER.get("ORDER_ENGINE", False))


def place(
    *,
    actor: Actor,
    account_id: int,
    asset_id: int,
    side: str,
    mode: str,
    price_fen: int,
    quantity: int,
    client_order_id: str,
    replay: bool = False,
) -> dict[str, Any]:
    """Place an order through the engine; the acknowledgement: ``order`` (id), ``trades`` (ids), ``replayed``.
    ``replay``: the request carries an Idempotency-Key, so an order committed under this client order id with
    the same terms is this request's own (its acknowledgement was lost) and answers as placed."""
    args = {
        "account": account_id,
        "side": side,
        "mode": mode,
        "price_fen": price_fen,
        "quantity": quantity,
        "client_order_id": client_order_id,
    }
    return _call("place", actor, asset_id, args, replay=replay)


def cancel(*, actor: Actor, asset_id: int, order_id: int) -> dict[str, Any]:
    return _call("cancel", actor, asset_id, {"order": order_id})


def _call(op: str, actor: Actor, asset_id: int, args: dict[str, Any], *, replay: bool = False) -> dict[str, Any]:
    via = transport()
    if not via.is_alive(asset_id):
        raise EngineUnavailable(details={"asset": asset_id})
    request_id = uuid.uuid4().hex
    via.submit(
        asset_id,
        {
            "id": request_id,
            "op": op,
            "asset": asset_id,
            "actor": dataclasses.asdict(actor),
            "args": args,
            "replay": replay,
            "deadline": time.time() + ACK_SECONDS,
        },
    )
    reply = via.wait_ack(request_id, ACK_SECONDS + 1.0)
    if reply is None or (not reply.get("ok") and "error" not in reply):
        # Not "not taken": the engine may have committed it and lost only the acknowledgement.
        raise EngineUnavailable(NO_ACK_MESSAGE, details={"asset": asset_id, "request": request_id})
    if not reply["ok"]:
        raise _error(reply["error"])
    return reply


@functools.cache
def _codes() -> dict[str, type[DomainError]]:
    return catalogue()  # read once the apps are loaded (the first refusal comes long after)


def _error(body: dict[str, Any]) -> DomainError:
    """The refusal the engine met, as the class the error catalogue (``core.errors.catalogue``) gives its code,
    so the API answers the same code and status. Only a code the catalogue lists is accepted: a reply names no
    module to import."""
    cls = _codes().get(body.get("code") or "")
    if cls is None:
        raise TypeError(f"unknown error code in the engine's reply: {body.get('code')!r}")
    return cls(body.get("message"), details=body.get("details") or {})
