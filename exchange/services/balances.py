"""Balance rows as a posting changes them: the refusal of more than is available, and the set-wise write.

The rows are locked by ``exchange.locks.lock_balances`` (in the one lock order) before they are read here;
``ledger_post`` and the hold services (``exchange.services.holds``) write them with ``write_balances``.
"""

from __future__ import annotations

from django.utils.translation import gettext

from core.money import amount
from exchange.bulk import bulk_update
from exchange.errors import InsufficientAvailable
from exchange.locks import LockedBalance
from exchange.models import Account, Asset, Balance

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
