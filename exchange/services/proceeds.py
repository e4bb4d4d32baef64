"""Cash from sales buys on T and is withdrawn from T+1 (the settlement rules of China's carbon markets).

Whether a market's sales' cash buys on T is its rulebook's ``sale_cash_buys_same_day`` (docs/market.md);
where it doesn't, that cash buys only once its trade has settled.

A trade moves nothing until settlement, after the close. So that a seller can buy with the proceeds on the
same day, a buy that needs more cash than the account has available draws on the proceeds of the account's
unsettled sales: of each such trade, up to the turnover less the seller's fee, oldest trade first, the cash
leg moves now from the buyer's order hold, through the clearing account, to the seller (a settlement entry,
``ProceedsAdvance`` rows saying which trade paid how much), and settlement later pays only the rest. Only
sales certain to settle count: both sides are held (the seller's units by the sell order's hold, the buyer's
cash by the buy order's), and sales of pledged units on enforcement are left out (their proceeds pay the
lender first).

The reservation stays exact: what is advanced is cash that already exists, moved out of the counterparty's
hold, never credit. An advance holds the settlement lock shared, taken without waiting (a settlement running
means no advance now), so a settlement and an advance never both pay one trade's cash; and the account's own
proceeds lock, so two buys of one account never draw on the same proceeds twice. Cash advanced and not
yet settled can't be withdrawn (``proceeds_not_withdrawable``): it becomes withdrawable when its trade settles,
after the close, so from T+1.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.utils.translation import gettext_noop

from accounts.actors import Actor
from core import clock
from core.errors import translatable as _
from core.i18n import registry_text
from core.money import fen_to_str
from exchange.errors import RulebookNotFound, RuleViolation
from exchange.locks import lock_proceeds, try_lock_settlement_shared
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    Balance,
    Hold,
    HoldKind,
    ProceedsAdvance,
    TransactionKind,
)
from exchange.selectors.rulebooks import rulebook_for
from exchange.selectors.settlement import settlement_watermark, unsettled_trades
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record
from exchange.services.ledger import Leg, hold_place, journal_open, ledger_post


class ProceedsNotWithdrawable(RuleViolation):
    code = "proceeds_not_withdrawable"
    default_message = _("Cash from sales that have not settled yet buys today but is withdrawable only once settled.")
    remedy = "Withdraw at most the withdrawable amount, or wait until the sales settle after the close (T+1)."


@dataclass(frozen=True, slots=True)
class _BuyHold:
    """A buy order's hold as a leg names it (``ledger_post`` locks and checks the row itself)."""

    id: int
    account_id: int
    asset_id: int
    kind: str = HoldKind.ORDER.value

    @property
    def pk(self) -> int:
        return self.id


_ADVANCED = ProceedsAdvance._meta.db_table


def _unsettled_sales(account: Account) -> list[tuple[int, int, int, int]]:
    """The account's sales that are certain to settle and what of each is still to be paid to it: trade id,
    buyer account, buyer hold, proceeds left (turnover less the seller's fee less what was advanced), oldest first.
    Only the trades from the settlement watermark on are read (``selectors.settlement.unsettled_trades``), and
    only sales of instruments whose market lets sales' cash buy on the day (the rulebook in effect today,
    ``sale_cash_buys_same_day``) count."""
    unsettled, params = unsettled_trades(settlement_watermark())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.id, b.account_id, b.hold_id,
                   t.turnover_fen - t.seller_fee_fen
                     - COALESCE((SELECT sum(a.amount_fen) FROM {_ADVANCED} a WHERE a.trade_id = t.id), 0)::bigint,
                   t.asset_id
              FROM exchange_trade t
              JOIN exchange_order s ON s.id = t.sell_order_id
              JOIN exchange_hold sh ON sh.id = s.hold_id
              JOIN exchange_order b ON b.id = t.buy_order_id
             WHERE {unsettled}
               AND s.account_id = %s
               AND sh.kind = %s
             ORDER BY t.id
            """,
            [*params, account.pk, HoldKind.ORDER.value],
        )
        rows = [row for row in cursor.fetchall() if row[3] > 0]
    same_day = _sale_cash_buys_same_day({row[4] for row in rows})
    return [row[:4] for row in rows if row[4] in same_day]


def _sale_cash_buys_same_day(asset_ids: set[int]) -> set[int]:
    """Of these instruments, those whose rulebook in effect today lets the cash of their sales buy on the day."""
    found = set()
    for asset in Asset.objects.filter(pk__in=asset_ids).select_related("market"):
        try:
            if rulebook_for(asset).sale_cash_buys_same_day:
                found.add(asset.pk)
        except RulebookNotFound:
            continue  # no market rules: nothing is known to allow it
    return found


def proceeds_unsettled(account: Account) -> int:
    """Proceeds of the account's unsettled sales not yet advanced: what a buy may still draw on today."""
    return sum(row[3] for row in _unsettled_sales(account))


def advanced_unsettled(account: Account) -> int:
    """Cash advanced to the account from sales that have not settled yet (not withdrawable). Only the advances
    made from the settlement watermark's day on are read (an unsettled trade is of that day or later, and its
    advance came after it), by the ``(account, created_at)`` index, and only their trades not yet settled."""
    mark = settlement_watermark()
    unsettled, params = unsettled_trades(mark)
    since = "" if mark.since is None else "AND a.created_at >= %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT COALESCE(sum(a.amount_fen), 0)::bigint
              FROM {_ADVANCED} a
              JOIN exchange_trade t ON t.id = a.trade_id
             WHERE a.account_id = %s {since} AND {unsettled}
            """,
            [account.pk, *([] if mark.since is None else [mark.since]), *params],
        )
        return int(cursor.fetchone()[0])


def _advance(actor: Actor, account: Account, cash: Asset, shortfall: int) -> int:
    """Pay the account ``shortfall`` of its unsettled sales' proceeds now, or nothing if they fall short; return
    how much was paid."""
    if not try_lock_settlement_shared():
        return 0  # a settlement is running: it pays these proceeds itself, in a moment
    lock_proceeds(account.pk)
    sales = _unsettled_sales(account)
    if sum(row[3] for row in sales) < shortfall:
        return 0
    clearing = system_account(AccountKind.CLEARING)
    accounts = {a.pk: a for a in Account.objects.filter(pk__in={row[1] for row in sales})}
    legs: list[Leg] = []
    advances: list[tuple[int, int]] = []
    left = shortfall
    for trade_id, buyer_account, buyer_hold, proceeds in sales:
        if left <= 0:
            break
        amount = min(proceeds, left)
        hold = _BuyHold(buyer_hold, buyer_account, cash.pk)
        legs.append(Leg(cash, accounts[buyer_account], clearing, amount, hold=hold))
        advances.append((trade_id, amount))
        left -= amount
    paid = shortfall - left
    legs.append(Leg(cash, clearing, account, paid))
    request = {"account": account.number, "amount": fen_to_str(paid), "trades": [t for t, _ in advances]}
    txn, _replayed = journal_open(
        kind=TransactionKind.SETTLEMENT,
        actor=actor,
        idempotency_key=None,
        request=request,
        memo=registry_text(
            gettext_noop("Sale proceeds paid before settlement to %(account)s"), {"account": account.number}
        ),
        metadata={"proceeds_advance": True, "trades": len(advances)},
    )
    posted = ledger_post(txn, legs, net=True)
    now = clock.now()  # the clock that dates trades, so an advance is never dated before its trade
    ProceedsAdvance.objects.bulk_create(
        [
            ProceedsAdvance(trade_id=trade_id, account=account, amount_fen=amount, transaction=txn, created_at=now)
            for trade_id, amount in advances
        ]
    )
    audit_record(
        actor=actor,
        action="trade.proceeds_advance",
        obj=txn,
        payload={
            **request,
            "advances": [[t, fen_to_str(a)] for t, a in advances],
            "entry_digest": posted.digest,
        },
    )
    return paid


def buy_hold_place(*, actor: Actor, account: Account, cash: Asset, quantity: int, reference: str) -> Hold:
    """Hold a buy's cash; if the account has less available, first draw the difference from the proceeds of its
    unsettled sales. Refused ``insufficient_available`` when even both fall short (nothing is advanced then)."""
    total, held = Balance.objects.filter(account=account, asset=cash).values_list("total", "held").first() or (0, 0)
    if quantity > total - held:
        _advance(actor, account, cash, quantity - (total - held))
    return hold_place(account=account, asset=cash, quantity=quantity, kind=HoldKind.ORDER, reference=reference)


def check_withdrawable(account: Account, cash: Asset, amount_fen: int) -> None:
    """After a withdrawal was posted (its balance locked): refuse it if it took cash advanced from unsettled
    sales. The caller's transaction rolls back, so the refusal changes nothing."""
    advanced = advanced_unsettled(account)
    if not advanced:
        return
    total, held = Balance.objects.filter(account=account, asset=cash).values_list("total", "held").get()
    if total - held < advanced:
        raise ProceedsNotWithdrawable(
            details={
                "account": account.number,
                "unsettled_proceeds": fen_to_str(advanced),
                "withdrawable": fen_to_str(max(0, total - held + amount_fen - advanced)),
            }
        )


__all__ = [
    "ProceedsNotWithdrawable",
    "advanced_unsettled",
    "buy_hold_place",
    "check_withdrawable",
    "proceeds_unsettled",
]
