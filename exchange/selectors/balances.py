"""Holdings and statements, read from materialised balances and the posting index (no history sums)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext, pgettext

from core import clock
from core.db import joined_rows
from core.money import amount
from exchange.models import Account, Asset, Balance, Posting, SerialBlock
from exchange.selectors.statements import trade_legs


def holdings_for_account(account: Account) -> list[Balance]:
    """The account's balances, one per asset it ever held, with the asset joined in (one indexed read).

    Read with one raw query: no ORM query to compose, this is the hottest read.
    """
    return joined_rows(
        Balance,
        Asset,
        "asset",
        "b.account_id = %s ORDER BY a.kind, a.code",
        [account.pk],
    )


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
