"""Holdings and statements, read from materialised balances and the posting index (no history sums)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext, pgettext

from accounts.actors import Actor
from core import clock
from core.money import amount, fen_to_str
from exchange.errors import AccountNotFound
from exchange.models import Account, Asset, AssetKind, Balance, Posting, SerialBlock
from exchange.selectors.statements import trade_legs


def holdings_visible(actor: Actor, number: str) -> list[dict[str, Any]]:
    """What the account holds, per asset, as the API answers it, if the actor may see the account.

    One statement (the account by its unique number, then its balances by the (account, asset) unique
    index, with each asset's code and kind), plain rows out: the balance read is the hottest read there
    is, and composing model instances and a serializer cost more than the query. An account the actor
    may not see is ``AccountNotFound``, as ``account_visible`` answers it.
    """
    visible = "" if actor.sees_everything else " AND a.participant_id = %s"
    params: list[Any] = [number] if actor.sees_everything else [number, actor.participant_id]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.code, s.kind, b.total, b.held FROM exchange_account a "
            "LEFT JOIN exchange_balance b ON b.account_id = a.id LEFT JOIN exchange_asset s ON s.id = b.asset_id "
            f"WHERE a.number = %s{visible} ORDER BY s.kind, s.code",
            params,
        )
        rows = cursor.fetchall()
    if not rows:
        raise AccountNotFound(details={"account": number})
    cash = AssetKind.CASH.value
    return [
        {
            "asset": code,
            "asset_kind": kind,
            "total": fen_to_str(total) if kind == cash else total,
            "held": fen_to_str(held) if kind == cash else held,
            "available": fen_to_str(total - held) if kind == cash else total - held,
        }
        for code, kind, total, held in rows
        if code is not None  # the account's row alone: it holds nothing yet
    ]


def balance_of(account: Account, asset: Asset) -> Balance:
    return Balance.objects.filter(account=account, asset=asset).first() or Balance(
        account=account, asset=asset, total=0, held=0
    )


def blocks_for_account(account: Account, asset: Asset | None = None) -> QuerySet[SerialBlock]:
    queryset = SerialBlock.objects.filter(account=account).select_related("asset", "hold").order_by("asset_id", "first")
    return queryset if asset is None else queryset.filter(asset=asset)


def statement(account: Account, asset: Asset | None = None) -> QuerySet[Posting]:
    """The account's postings, newest first; keyset-paginated by id (``posting_statement_idx``)."""
    queryset = Posting.objects.filter(account=account).select_related("transaction", "asset").order_by("-id")
    return queryset if asset is None else queryset.filter(asset=asset)


@dataclass(frozen=True, slots=True)
class StatementLine:
    posting: int
    transaction: int
    time: str
    kind: str
    asset: str
    quantity: int | str
    balance_after: int | str
    memo: str
    trades: str = ""


def _legs_text(legs: list[dict]) -> str:
    """A settlement line's trades in one CSV cell, in the reader's language: trade, side, quantity at price;
    units, cash and fee legs."""
    sides = {"buy": pgettext("a trade leg's side", "buy"), "sell": pgettext("a trade leg's side", "sell")}
    return "; ".join(
        gettext(
            "trade %(trade)s %(side)s %(quantity)s %(asset)s @ %(price)s: units %(units)s, cash %(cash)s, fee %(fee)s"
        )
        % {**leg, "side": sides[leg["side"]], "units": f"{leg['units']:+d}"}
        for leg in legs
    )


def statement_lines(account: Account, asset: Asset | None = None, chunk: int = 2000) -> Iterator[StatementLine]:
    """Every line of the statement, oldest first, read in keyset chunks (for CSV export)."""
    after = 0
    base = Posting.objects.filter(account=account).select_related("transaction", "asset").order_by("id")
    if asset is not None:
        base = base.filter(asset=asset)
    while True:
        rows = list(base.filter(id__gt=after)[:chunk])
        if not rows:
            return
        legs = trade_legs(account.pk, rows)
        for p in rows:
            yield StatementLine(
                posting=p.pk,
                transaction=p.transaction_id,
                time=clock.local_iso(p.transaction.created_at),
                kind=p.transaction.kind,
                asset=p.asset.code,
                quantity=amount(p.asset, p.quantity),
                balance_after=amount(p.asset, p.balance_after),
                memo=p.transaction.memo,
                trades=_legs_text(legs.get(p.pk, [])),
            )
        after = rows[-1].pk
