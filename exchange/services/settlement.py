"""Settlement: delivery versus payment for every unsettled trade, in one batch and one transaction.

A batch takes every trade unsettled when it starts and posts, in one journal transaction: units from
the seller's order hold to the buyer; cash from the buyer's order hold (turnover and buyer fee) through
the exchange's clearing account to the seller (turnover less seller fee) and to the exchange's fee
account (both fees), with one posting per account and asset (its net change in the batch; the clearing
account nets to zero and gets none; the trades keep the detail); then it releases what finished orders
no longer need (a buy filled below its limit), and pays a pledge's lender from the proceeds of pledged
units sold on enforcement (``pledges.sale_fills_settled``). Each trade settled gets its
``TradeSettlement`` row (trade -> batch) in the same transaction, so a worker killed at any point leaves
either the whole batch or none of it, and the next run settles each trade exactly once (the link
table's primary key and append-only trigger say so in the database too). The number of statements does
not grow with the trades (sales on enforcement add a few per pledge sold).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.i18n import registry_text
from core.money import fen_to_str
from exchange.bulk import pg_array
from exchange.errors import RulebookNotFound
from exchange.faults import crash_point
from exchange.locks import lock_pledge_sales, lock_settlement
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    HoldKind,
    OrderStatus,
    ProceedsAdvance,
    SettlementBatch,
    SettlementStatus,
    Trade,
    TradeSettlement,
    TransactionKind,
)
from exchange.selectors.rulebooks import rulebook_for
from exchange.selectors.settlement import Watermark, settlement_watermark, unsettled_trades
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record, service
from exchange.services.cash import cash_asset
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import Leg, holds_release, journal_open, ledger_post
from exchange.services.pledges import SaleFills, sale_fills_settled
from exchange.services.sessions import day_closed


@dataclass(frozen=True, slots=True)
class _HoldRef:
    """An order's hold as a leg names it (``ledger_post`` locks and checks the row itself)."""

    id: int
    account_id: int
    asset_id: int
    kind: str

    @property
    def pk(self) -> int:
        return self.id


def settleable_today(moment: datetime, instruments: list[int]) -> list[int]:
    """Instruments whose trades of today may settle now: their market's day has closed (every session of
    every mode is over), or their rulebook delivers on the day itself (``units_sellable_after_days`` 0).
    Trades of earlier days always may. ``instruments``: every asset that trades."""
    today = clock.trading_day(moment)
    # One probe per instrument for an unsettled trade of today, not every such trade read back (a batch has
    # 100,000 of them).
    unsettled_today = Trade.objects.filter(  # type: ignore[misc]  # TradeManager annotates it; django-stubs see only fields
        asset_id=OuterRef("pk"), settlement_batch__isnull=True, trading_day__gte=today
    )
    ready = []
    for asset in Asset.objects.filter(Exists(unsettled_today), pk__in=instruments).order_by("pk"):
        try:
            book = rulebook_for(asset, today)
        except RulebookNotFound:
            continue
        if book.units_sellable_after_days == 0 or day_closed(book, today, moment):
            ready.append(asset.pk)
    return ready


SORT_MEMORY = "64MB"
"""The batch's work_mem (``SET LOCAL``): enough to sort 100,000 trades, and both sides of each, in memory."""

CLOCK_MARGIN = timedelta(minutes=5)
"""How far the application's clock (which dates trades) may be from the database's (which dates transactions)."""


def _settled_before(today: date, previous: date | None) -> date | None:
    """The watermark this batch may record: ``today`` (it settles every trade of an earlier day that it
    sees), once no trade of an earlier day can still be on its way. Called before the trades' read.

    A trade's trading day is the day it matched on, inside its transaction, so a trade of a day before
    ``today`` comes from a transaction that began before ``today`` did. If no other transaction on this
    database began before then (less ``CLOCK_MARGIN``, for the application's clock against the
    database's), every such trade has committed and the read that follows sees it. Otherwise (a
    transaction open since yesterday, or one whose start this role may not see) the previous watermark
    stays; the next run tries again. A trade that still arrived later for an earlier day is refused by
    ``greenledger_trade_after_watermark``.
    """
    if previous is not None and previous >= today:
        return previous
    boundary = datetime.combine(today, time.min, tzinfo=clock.MARKET_TZ) + CLOCK_MARGIN
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # activity is read once per transaction otherwise
        cursor.execute(
            """SELECT EXISTS (
                   SELECT 1 FROM pg_stat_activity a
                    WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
                      AND (a.state IS NULL OR (a.state <> 'idle' AND (a.xact_start IS NULL OR a.xact_start < %s))))""",
            [boundary],
        )
        (older,) = cursor.fetchone()
    return previous if older else today


def _unsettled(today: date, same_day: list[int], mark: Watermark) -> list[tuple[Any, ...]]:
    """Unsettled trades with what settling them needs, read in one statement (one snapshot).

    Settlement runs one at a time (an advisory lock) and only settlement settles trades, so the rows
    need no row locks. An order seen filled or cancelled here has all its unsettled trades here too:
    its last trade and its status change were committed together. A trade is unsettled while it has no
    ``TradeSettlement`` row (an anti-join on that table's primary key), and the trades of days before the
    watermark are all settled, so only the trades of its day and later are read (``selectors.settlement.
    unsettled_trades``, the one definition, per instrument on the trades' index): the anti-join's cost
    follows the days not yet closed, not the history.

    Each row: trade id, asset, quantity, turnover, buyer fee, seller fee, buyer account, buyer hold,
    seller account, seller hold, buy order status, buy order id, sell order id, sell order status, then
    the buyer hold's account and asset and the seller hold's account, asset and kind.
    """
    unsettled, params = unsettled_trades(mark)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.id, t.asset_id, t.quantity, t.turnover_fen, t.buyer_fee_fen, t.seller_fee_fen,
                   b.account_id, b.hold_id, s.account_id, s.hold_id, b.status, b.id, s.id, s.status,
                   bh.account_id, bh.asset_id, sh.account_id, sh.asset_id, sh.kind
              FROM exchange_trade t
              JOIN exchange_order b ON b.id = t.buy_order_id
              JOIN exchange_order s ON s.id = t.sell_order_id
              JOIN exchange_hold bh ON bh.id = b.hold_id
              JOIN exchange_hold sh ON sh.id = s.hold_id
             WHERE {unsettled}
               AND (t.trading_day < %s OR t.asset_id = ANY(%s::bigint[]))
             ORDER BY t.id
            """,
            [*params, today, same_day],
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
    # The batch sorts its trades (the read below) and both sides of each (its audit event's projection to
    # participants): 100,000 trades are 15-30 MB of sort rows, which the server's default work_mem (4 MB)
    # sends to disk. More memory for this transaction only.
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
    today = clock.trading_day(started)
    mark = settlement_watermark()
    settled_before = _settled_before(today, mark.settled_before)  # before the read: see there
    rows = _unsettled(today, settleable_today(started, mark.instruments), mark)
    if not rows:
        batch = SettlementBatch.objects.create(
            status=SettlementStatus.EMPTY,
            initiated_by=actor.label,
            started_at=started,
            completed_at=clock.now(),
            settled_before=settled_before,
        )
        audit_record(actor=actor, action="settlement.run", obj=batch, payload={"trades": 0})
        return batch
    return _settle(actor, rows, started, settled_before)


def _settle(actor: Actor, rows: list[tuple], started: datetime, settled_before: date | None) -> SettlementBatch:
    cash = cash_asset()
    fees_account = system_account(AccountKind.FEE)
    clearing = system_account(AccountKind.CLEARING)
    # Aggregate per hold and counterparty: the same legs whether an order filled once or a hundred times.
    # Units go from the seller's hold to the buyer. Cash goes through the exchange's clearing account, as
    # the exchange clears it: each buyer pays in the turnover and fee of its orders' holds (one leg per
    # buyer account, funded by each of those holds by what its trades cost), each seller is paid its
    # turnover less its fee, the fee account gets both fees. The same net postings as a leg per trade (the
    # clearing account's legs net to zero, so it gets none; the batch posts net), and a leg per buyer, not
    # per order: a buyer's hundred one-trade orders are one leg. One pass over the rows, unpacked.
    units: dict[tuple[int, int, int], int] = defaultdict(int)  # (asset, seller hold, buyer account) -> units
    paid_in: dict[int, int] = defaultdict(int)  # buyer hold -> turnover + buyer fee
    paid_out: dict[int, int] = defaultdict(int)  # seller account -> turnover - seller fee
    holds: dict[int, _HoldRef] = {}  # the orders' holds, as the trades' read gave them
    finished_buys: dict[int, int] = {}  # buy order id -> hold id, for orders no longer open
    pledge_sales: set[int] = set()  # sell orders holding a pledge hold (sales on enforcement)
    buyer_fees = seller_fees = units_total = cash_total = 0
    open_status, order_kind, pledge_kind = OrderStatus.OPEN.value, HoldKind.ORDER.value, HoldKind.PLEDGE.value
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
        sell_id,
        _,
        buyer_hold_acc,
        buyer_hold_asset,
        seller_hold_acc,
        seller_hold_asset,
        seller_hold_kind,
    ) in rows:
        units[(asset_id, seller_hold, buyer_acc)] += quantity
        paid_in[buyer_hold] += turnover + buyer_fee
        paid_out[seller_acc] += turnover - seller_fee
        units_total += quantity
        cash_total += turnover
        buyer_fees += buyer_fee
        seller_fees += seller_fee
        if buy_status != open_status:
            finished_buys[buy_id] = buyer_hold
        if buyer_hold not in holds:
            holds[buyer_hold] = _HoldRef(buyer_hold, buyer_hold_acc, buyer_hold_asset, order_kind)
        if seller_hold not in holds:
            holds[seller_hold] = _HoldRef(seller_hold, seller_hold_acc, seller_hold_asset, seller_hold_kind)
        if seller_hold_kind == pledge_kind:
            pledge_sales.add(sell_id)
    # Cash of some sales was paid before settling, so that the seller could buy on T (services/proceeds.py):
    # those buyer holds pay in, and those sellers are paid, only the rest. One statement.
    trade_ids = pg_array([r[0] for r in rows], "bigint")
    for buyer_hold, seller_acc, advanced in _advanced(trade_ids):
        paid_in[buyer_hold] -= advanced
        paid_out[seller_acc] -= advanced
    # One statement each.
    account_ids = {h.account_id for h in holds.values()} | set(paid_out) | {key[2] for key in units}
    accounts = {a.pk: a for a in Account.objects.filter(pk__in=account_ids)}
    assets = {a.pk: a for a in Asset.objects.filter(pk__in={key[0] for key in units})}

    legs: list[Leg] = []
    for (asset_id, seller_hold, buyer_acc), quantity in units.items():
        hold = holds[seller_hold]
        legs.append(Leg(assets[asset_id], accounts[hold.account_id], accounts[buyer_acc], quantity, hold=hold))
    pays: dict[int, list[tuple[_HoldRef, int]]] = defaultdict(list)  # buyer account -> (its hold, fen)
    for buyer_hold, amount in paid_in.items():
        if amount == 0:  # all of it advanced already (no fees)
            continue
        hold = holds[buyer_hold]
        pays[hold.account_id].append((hold, amount))
    for buyer_acc, funded in pays.items():
        legs.append(Leg(cash, accounts[buyer_acc], clearing, sum(fen for _, fen in funded), holds=funded))
    for seller_acc, amount in paid_out.items():
        if amount > 0:
            legs.append(Leg(cash, clearing, accounts[seller_acc], amount))
        elif amount < 0:  # fees above the proceeds (not with the fee schedules in force): the seller pays in
            legs.append(Leg(cash, accounts[seller_acc], clearing, -amount))
    if buyer_fees + seller_fees:
        legs.append(Leg(cash, clearing, fees_account, buyer_fees + seller_fees))

    totals = {"trades": len(rows), "units": units_total, "cash": cash_total, "fees": buyer_fees + seller_fees}
    txn, _ = journal_open(
        kind=TransactionKind.SETTLEMENT,
        actor=actor,
        idempotency_key=None,
        request={"trades": [rows[0][0], rows[-1][0], len(rows)]},
        memo=registry_text(gettext_noop("Settlement of %(count)s trades"), {"count": len(rows)}),
        metadata={"trades": len(rows), "first_trade": rows[0][0], "last_trade": rows[-1][0]},
        at=started,
    )
    # Pledged units sold on enforcement: their enforcement and loan rows before the ledger's balance and
    # hold locks (exchange.locks), as every pledge service takes them.
    lock_pledge_sales(pledge_sales)
    # One posting per account and asset for the batch (net), not two per leg: the trades, linked to the
    # batch, keep the detail; the journal says what each account gave and got in this settlement.
    posted = ledger_post(txn, legs, net=True)
    # Filled or cancelled buy orders keep nothing once these trades settle (fills below the limit). A hold
    # that this posting consumed to the last fen has nothing to release (and ended as posted): skip it.
    leftover = [(holds[hold_id], None) for hold_id in finished_buys.values() if hold_id not in posted.ended_holds]
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
        settled_before=settled_before,
    )
    # Each trade's settlement is one narrow row (trade -> batch): the primary key settles it once.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TradeSettlement._meta.db_table} (trade_id, batch_id) SELECT unnest(%s::bigint[]), %s",
            [trade_ids, batch.pk],
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


def _advanced(trade_ids: str) -> list[tuple[int, int, int]]:
    """What of these trades' cash was paid before settlement: (buyer hold, seller account, fen) summed."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT b.hold_id, a.account_id, sum(a.amount_fen)::bigint
              FROM {ProceedsAdvance._meta.db_table} a
              JOIN exchange_trade t ON t.id = a.trade_id
              JOIN exchange_order b ON b.id = t.buy_order_id
             WHERE a.trade_id = ANY(%s::bigint[])
             GROUP BY b.hold_id, a.account_id
            """,
            [trade_ids],
        )
        return cursor.fetchall()


def _pay_pledge_lenders(actor: Actor, rows: list[tuple], holds: dict[int, _HoldRef]) -> None:
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
