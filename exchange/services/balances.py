"""Balance rows as a posting changes them: the bookkeeping of a posting, the refusal of more than is
available, and the set-wise write.

A posting's bookkeeping is one SQL function, ``greenledger_balances_post`` (``exchange/sql``), which
``ledger_post`` calls through ``balances_post`` and ``greenledger_transfer`` calls for its two keys: it locks
the balance rows in key order (creating missing ones) and the consumed holds, refuses (SQLSTATE ``GL004`` for
a hold, ``GL001`` for more than is available, the figures in the detail), writes the balances, inserts the
postings with the balance after each and writes what the consumed holds have left. The hold services
(``exchange.services.holds``), which post nothing, lock rows with ``exchange.locks.lock_balances`` and write
them with ``write_balances``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import gettext

from core.money import amount
from exchange.bulk import bulk_update, pg_array
from exchange.errors import InsufficientAvailable, InvalidState
from exchange.locks import LockedBalance
from exchange.models import Account, Asset, Balance, HoldStatus

INSUFFICIENT_SQLSTATE = "GL001"
HOLD_SQLSTATE = "GL004"
_BALANCES_POST = (
    "SELECT * FROM greenledger_balances_post(%s, %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::bigint[], %s::boolean[], %s::bigint[], %s::bigint[], %s::int[], %s::bigint[], %s::text, %s::timestamptz)"
)
BALANCE_WRITE = [("total", "bigint"), ("held", "bigint")]


def insufficient_available(account: Account, asset: Asset, available: int, requested: int) -> InsufficientAvailable:
    """The refusal of more than ``account`` has available, with the figures as the API gives amounts: units
    as integers, cash as yuan strings ("47780441.90", never raw fen)."""
    shown, wanted = amount(asset, available), amount(asset, requested)
    return InsufficientAvailable(
        gettext("Account %(account)s has %(available)s %(asset)s available; %(requested)s requested.")
        % {"account": account.number, "available": shown, "asset": asset.code, "requested": wanted},
        details={"account": account.number, "asset": asset.code, "available": shown, "requested": wanted},
    )


def balance_rows(
    balances: dict[tuple[int, int], LockedBalance], deltas: dict[tuple[int, int], list[int]]
) -> list[tuple[int, int, int]]:
    """Apply the deltas to the locked balances; return the rows to write (id, total, held)."""
    rows = []
    for key, (d_total, d_held) in deltas.items():
        bal = balances[key]
        bal.total += d_total
        bal.held += d_held
        if d_total or d_held:
            rows.append((bal.id, bal.total, bal.held))
    return rows


def write_balances(balances: dict[tuple[int, int], LockedBalance], deltas: dict[tuple[int, int], list[int]]) -> None:
    bulk_update(Balance._meta.db_table, BALANCE_WRITE, balance_rows(balances, deltas))


def balances_post(
    txn_id: int,
    deltas: dict[tuple[int, int], list[int]],
    outgoing: dict[tuple[int, int], int],
    negative: Iterable[int],
    hold_use: dict[int, int],
    postings: Sequence[tuple[tuple[int, int], int]],
    *,
    accounts: dict[int, Account],
    assets: dict[int, Asset],
    then: Callable[[], None] | None = None,
    ended_hold_status: str = HoldStatus.POSTED,
) -> tuple[dict[tuple[int, int], LockedBalance], frozenset[int]]:
    """The bookkeeping of a posting in one statement (``greenledger_balances_post``); return the balances
    after it, by key, and the ids of the consumed holds it ended (used up: ``ended_hold_status``, ended now).
    The function writes what each consumed hold has left.

    ``deltas``: per (account, asset), the change of (total, held), in the order refusals are looked for;
    ``outgoing``: what leaves each from available units; ``negative``: accounts whose new rows may go
    negative; ``postings``: ((account, asset), quantity) in the order written. ``then`` is called after the
    statement is sent and before its answer is read: in pipeline mode what it sends rides in the same round
    trip, and runs once the locks are taken. A refusal raises ``InvalidState`` (a hold) or
    ``InsufficientAvailable`` (with the figures), and the database transaction can't go on.
    """
    keys = list(deltas)
    index = {key: i for i, key in enumerate(keys, start=1)}
    negative = set(negative)
    # In id order, the order they are locked in: the rows are then written in the order they lie in the table
    # and its indexes (a settlement's 100,000 order holds, a buyer's scattered among everyone's).
    holds = sorted(hold_use)
    params = [
        txn_id,
        pg_array([a for a, _ in keys], "bigint"),
        pg_array([s for _, s in keys], "bigint"),
        pg_array([deltas[k][0] for k in keys], "bigint"),
        pg_array([deltas[k][1] for k in keys], "bigint"),
        pg_array([outgoing.get(k, 0) for k in keys], "bigint"),
        "{" + ",".join("t" if a in negative else "f" for a, _ in keys) + "}",
        pg_array(holds, "bigint"),
        pg_array([hold_use[h] for h in holds], "bigint"),
        pg_array([index[key] for key, _ in postings], "integer"),
        pg_array([quantity for _, quantity in postings], "bigint"),
        str(ended_hold_status),
        timezone.now(),
    ]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_BALANCES_POST, params)
            if then is not None:
                then()
            ids, totals, helds, negatives, ended = cursor.fetchone()
    except DatabaseError as exc:
        refusal = _refusal(exc, accounts, assets)
        if refusal is None:
            raise
        raise refusal from None
    balances = {
        key: LockedBalance(row_id, key[0], key[1], total + deltas[key][0], held + deltas[key][1], bool(may_go_negative))
        for key, row_id, total, held, may_go_negative in zip(keys, ids, totals, helds, negatives, strict=True)
    }
    return balances, frozenset(ended)


def _refusal(
    exc: DatabaseError, accounts: dict[int, Account], assets: dict[int, Asset]
) -> InvalidState | InsufficientAvailable | None:
    """The domain error a refusal of ``greenledger_balances_post`` stands for; None for any other error."""
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    diag = getattr(cause, "diag", None)
    if sqlstate not in (INSUFFICIENT_SQLSTATE, HOLD_SQLSTATE) or diag is None:
        return None
    figures = json.loads(diag.message_detail)
    if sqlstate == HOLD_SQLSTATE:
        return InvalidState(gettext("The hold has ended or has less left than this movement needs."), details=figures)
    account, asset = accounts[figures["account"]], assets[figures["asset"]]
    return insufficient_available(account, asset, figures["available"], figures["requested"])
