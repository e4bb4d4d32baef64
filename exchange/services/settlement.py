"""Settlement: delivery versus payment for every unsettled trade, in one batch and one transaction.

A batch takes every trade unsettled when it starts and posts, in one journal transaction: units from
the seller's order hold to the buyer, cash from the buyer's order hold to the seller, the buyer's fee
from that hold and the seller's fee from the proceeds to the exchange's fee account, with one posting
per account and asset (its net change in the batch; the trades keep the detail); then it releases
what finished orders no longer need (a buy filled below its limit), and pays a pledge's lender from the
proceeds of pledged units sold on enforcement (``pledges.sale_fills_settled``). The trades are marked
settled in the same transaction, so a worker killed at any point leaves either the whole batch or none
of it, and the next run settles each trade exactly once. The number of statements does not grow with
the trades (sales on enforcement add a few per pledge sold).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from django.db import connection

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.money import fen_to_str
from exchange.errors import RulebookNotFound
from exchange.faults import crash_point
from exchange.locks import LockedHold, lock_pledge_sales, lock_settlement, read_holds
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    HoldKind,
    HoldStatus,
    OrderStatus,
    SettlementBatch,
    SettlementStatus,
    Trade,
    TransactionKind,
)
from exchange.selectors.rulebooks import rulebook_for
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record, service
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import Leg, holds_release, journal_open, ledger_post
from exchange.services.pledges import SaleFills, sale_fills_settled
from exchange.services.trading import cash_asset, day_closed


def settleable_today(moment: datetime) -> list[int]:
    """Instruments whose trades of today may settle now: their market's day has closed (every session of
    every mode is over), or their rulebook delivers on the day itself (``units_sellable_after_days`` 0).
    Trades of earlier days always may."""
    today = clock.trading_day(moment)
    asset_ids = set(
        Trade.objects.filter(settlement_batch__isnull=True, trading_day__gte=today).values_list("asset_id", flat=True)
    )
    ready = []
    for asset in Asset.objects.filter(pk__in=asset_ids).order_by("pk"):
        try:
            book = rulebook_for(asset, today)
        except RulebookNotFound:
            continue
        if book.units_sellable_after_days == 0 or day_closed(book, today, moment):
            ready.append(asset.pk)
    return ready


def _unsettled(
    today: date, same_day: list[int]
) -> list[tuple[int, int, int, int, int, int, int, int, int, int, str, int, int, str]]:
    """Unsettled trades with what settling them needs, read in one statement (one snapshot).

    Settlement runs one at a time (an advisory lock) and only settlement settles trades, so the rows
    need no row locks. An order seen filled or cancelled here has all its unsettled trades here too:
    its last trade and its status change were committed together.

    Each row: trade id, asset, quantity, turnover, buyer fee, seller fee, buyer account, buyer hold,
    seller account, seller hold, buy order status, buy order id, sell order id, sell order status.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.id, t.asset_id, t.quantity, t.turnover_fen, t.buyer_fee_fen, t.seller_fee_fen,
                   b.account_id, b.hold_id, s.account_id, s.hold_id, b.status, b.id, s.id, s.status
              FROM exchange_trade t
              JOIN exchange_order b ON b.id = t.buy_order_id
              JOIN exchange_order s ON s.id = t.sell_order_id
             WHERE t.settlement_batch_id IS NULL
               AND (t.trading_day < %s OR t.asset_id = ANY(%s::bigint[]))
             ORDER BY t.id
            """,
            [today, same_day],
        )
        return cursor.fetchall()


@service
@idempotent_service("settlement_run")
def settlement_run(*, actor: Actor | None = None, idempotency_key: str | None = None) -> SettlementBatch:
    """Settle the unsettled trades of closed trading days, as the registry (the settlement body, Decree 775
    art. 5): scheduled after the close, or on demand by registry staff. Today's trades wait for their market's
    close (units bought on T are delivered after T's close, so they are sellable from T+1), unless the
    instrument's rulebook delivers on the day (``units_sellable_after_days`` 0).

    ``idempotency_key`` (a command's or task's retry) is claimed by ``@idempotent_service``; the body never sees it.
    """
    actor = actor or Actor.system("settlement")
    if not actor.is_system:
        actor.require_can_act()
        actor.require_kind(ParticipantKind.REGISTRY)
    started = clock.now()
    lock_settlement()
    rows = _unsettled(clock.trading_day(started), settleable_today(started))
    if not rows:
        batch = SettlementBatch.objects.create(
            status=SettlementStatus.EMPTY,
            initiated_by=actor.label,
            started_at=started,
            completed_at=clock.now(),
        )
        audit_record(actor=actor, action="settlement.run", obj=batch, payload={"trades": 0})
        return batch
    return _settle(actor, rows, started)


def _settle(actor: Actor, rows: list[tuple], started: datetime) -> SettlementBatch:
    cash = cash_asset()
    fees_account = system_account(AccountKind.FEE)
    account_ids = {r[6] for r in rows} | {r[8] for r in rows}
    # One statement each; holds as plain rows.
    accounts = {a.pk: a for a in Account.objects.filter(pk__in=account_ids)}
    assets = {a.pk: a for a in Asset.objects.filter(pk__in={r[1] for r in rows})}
    holds = read_holds({r[7] for r in rows} | {r[9] for r in rows})

    # Aggregate per (hold, counterparty): the same legs whether an order filled once or a hundred times.
    units: dict[tuple[int, int, int], int] = defaultdict(int)  # (asset, seller hold, buyer account) -> units
    pay: dict[tuple[int, int], int] = defaultdict(int)  # (buyer hold, seller account) -> turnover
    buyer_fees: dict[int, int] = defaultdict(int)  # buyer hold -> fees
    seller_fees: dict[int, int] = defaultdict(int)  # seller account -> fees
    finished_buys: dict[int, int] = {}  # buy order id -> hold id, for orders no longer open
    for (
        _,
        asset_id,
        quantity,
        turnover,
        buyer_fee,
        seller_fee,
        buyer_acc,
        buyer_hold,
        seller_acc,
        seller_hold,
        buy_status,
        buy_id,
        _,
        _,
    ) in rows:
        units[(asset_id, seller_hold, buyer_acc)] += quantity
        pay[(buyer_hold, seller_acc)] += turnover
        buyer_fees[buyer_hold] += buyer_fee
        seller_fees[seller_acc] += seller_fee
        if buy_status != OrderStatus.OPEN:
            finished_buys[buy_id] = buyer_hold

    legs: list[Leg] = []
    for (asset_id, seller_hold, buyer_acc), quantity in units.items():
        hold = holds[seller_hold]
        legs.append(Leg(assets[asset_id], accounts[hold.account_id], accounts[buyer_acc], quantity, hold=hold))
    for (buyer_hold, seller_acc), turnover in pay.items():
        hold = holds[buyer_hold]
        legs.append(Leg(cash, accounts[hold.account_id], accounts[seller_acc], turnover, hold=hold))
    for buyer_hold, fee in buyer_fees.items():
        if fee:
            hold = holds[buyer_hold]
            legs.append(Leg(cash, accounts[hold.account_id], fees_account, fee, hold=hold))
    for seller_acc, fee in seller_fees.items():
        if fee:
            legs.append(Leg(cash, accounts[seller_acc], fees_account, fee))

    totals = {
        "trades": len(rows),
        "units": sum(r[2] for r in rows),
        "cash": sum(r[3] for r in rows),
        "fees": sum(buyer_fees.values()) + sum(seller_fees.values()),
    }
    txn, _ = journal_open(
        kind=TransactionKind.SETTLEMENT,
        actor=actor,
        idempotency_key=None,
        request={"trades": [rows[0][0], rows[-1][0], len(rows)]},
        memo=f"Settlement of {len(rows)} trades",
        metadata={"trades": len(rows), "first_trade": rows[0][0], "last_trade": rows[-1][0]},
        at=started,
    )
    # Pledged units sold on enforcement: their enforcement and loan rows before the ledger's balance and
    # hold locks (exchange.locks), as every pledge service takes them.
    lock_pledge_sales({r[12] for r in rows if holds[r[9]].kind == HoldKind.PLEDGE})
    # One posting per account and asset for the batch (net), not two per leg: the trades, linked to the
    # batch, keep the detail; the journal says what each account gave and got in this settlement.
    posted = ledger_post(txn, legs, net=True)
    # Filled or cancelled buy orders keep nothing once these trades settle (fills below the limit). A hold
    # that this posting consumed to the last fen has nothing to release (and ended as posted): skip it.
    leftover = [
        (holds[hold_id], None)
        for hold_id in finished_buys.values()
        if hold_id not in posted.holds or posted.holds[hold_id].status == HoldStatus.ACTIVE
    ]
    released = len(holds_release(leftover))
    batch = SettlementBatch.objects.create(
        status=SettlementStatus.COMPLETED,
        trades_count=totals["trades"],
        units_total=totals["units"],
        cash_total_fen=totals["cash"],
        fees_total_fen=totals["fees"],
        holds_released=released,
        transaction=txn,
        initiated_by=actor.label,
        started_at=started,
        completed_at=clock.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Trade._meta.db_table} SET settlement_batch_id = %s WHERE id = ANY(%s::bigint[])",
            [batch.pk, [r[0] for r in rows]],
        )
    crash_point("settlement.posted")
    audit_record(
        actor=actor,
        action="settlement.run",
        obj=batch,
        payload={
            "transaction": txn.pk,
            "trades": totals["trades"],
            "first_trade": rows[0][0],
            "last_trade": rows[-1][0],
            "units": totals["units"],
            "cash": fen_to_str(totals["cash"]),
            "fees": fen_to_str(totals["fees"]),
            "holds_released": released,
            "entry_digest": posted.digest,
        },
    )
    _pay_pledge_lenders(actor, rows, holds)
    return batch


def _pay_pledge_lenders(actor: Actor, rows: list[tuple], holds: dict[int, LockedHold]) -> None:
    """Sales of pledged units on enforcement (sell orders holding a pledge hold): in this same
    transaction, pay the lender from the proceeds just settled into the borrower's account."""
    fills: dict[int, SaleFills] = {}
    for row in rows:
        if holds[row[9]].kind != HoldKind.PLEDGE:
            continue
        fill = fills.setdefault(row[12], SaleFills())
        fill.units += row[2]
        fill.turnover_fen += row[3]
        fill.fees_fen += row[5]
        fill.order_ended = row[13] != OrderStatus.OPEN
    if fills:
        sale_fills_settled(actor=actor, fills=fills)


__all__ = ["settlement_run"]
