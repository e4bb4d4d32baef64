"""The exchange for the settlement, matching and audit rows.

Settlement needs a day's worth of unsettled trades. Placing 100,000 orders through the service would
measure matching, not settlement, so the resting sell orders are placed through ``order_place`` (their
holds reserve real serial blocks) and the crossing buy orders, their cash holds and the trades are
bulk-written exactly as matching would have left them: each buy order of 1 t filled at the resting
price, fees rounded per order as ``_charge`` rounds them, buyers' held cash raised by their holds.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date

from django.db import connection, transaction
from django.db.models import F

from accounts.models import ParticipantKind
from bench.fixtures import Holder, World, give_cash, give_units, holders
from core import clock
from exchange.models import Asset, Balance, Hold, Market, MarketRules, Order, Rulebook, RulebookMode, Trade
from exchange.services.instrument_rules import fee_for
from exchange.services.listings import asset_list
from exchange.services.orders import order_place

PRICE = 8000  # 80.00 yuan a tonne, the reference price
_ids = itertools.count(1)


def all_day_market(code: str = "XB-CDA") -> Market:
    """A market whose rulebook runs the continuous book all day, every day, and delivers on the day: what the
    benchmarks and the soak trade on (the engine's long-standing defaults: bands 10 % and 30 %, fee 0.6 %)."""
    market, created = Market.objects.get_or_create(
        code=code, defaults={"name": f"Benchmark market {code}", "operator_name": "Benchmark exchange"}
    )
    if created:
        book = Rulebook.objects.create(
            market=market,
            version=1,
            effective_from=date(2000, 1, 1),
            title="Benchmark continuous market",
            sources="bench/market.py",
            trading_days="daily",
            units_sellable_after_days=0,
            cash_withdrawable_after_days=0,
        )
        RulebookMode.objects.bulk_create(
            [
                RulebookMode(
                    rulebook=book,
                    mode="continuous",
                    sessions="00:00-24:00",
                    band_bp=1000,
                    buyer_fee_bp=60,
                    seller_fee_bp=60,
                ),
                RulebookMode(
                    rulebook=book,
                    mode="block",
                    sessions="00:00-24:00",
                    band_bp=3000,
                    min_quantity=100_000,
                    buyer_fee_bp=60,
                    seller_fee_bp=60,
                ),
            ]
        )
    return market


def listed(w: World) -> tuple[Holder, MarketRules]:
    operator = holders(1, kind=ParticipantKind.EXCHANGE, label="exchange")[0]
    Asset.objects.filter(pk=w.cea.pk).update(market=all_day_market())
    w.cea.refresh_from_db()
    rules = asset_list(actor=operator.actor, asset=w.cea, reference_price_fen=PRICE)
    return operator, rules


def _copy(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def unsettled_trades(w: World, rules: MarketRules, trades: int, sellers: int, buyers: int) -> None:
    """``trades`` unsettled trades of 1 t: ``sellers`` resting sell orders against one-trade buy orders."""
    fee_bp = 60  # both sides, all_day_market's rulebook
    sell_people = holders(sellers, label="seller")
    buy_people = holders(buyers, label="buyer")
    per_seller = [len(range(k, trades, sellers)) for k in range(sellers)]
    give_units(w, [s.account for s in sell_people], max(per_seller))
    buy_fee = fee_for(PRICE, fee_bp)
    per_buyer = [len(range(j, trades, buyers)) for j in range(buyers)]
    give_cash(w, [b.account for b in buy_people], max(per_buyer) * (PRICE + buy_fee))
    batch = next(_ids)
    sells = [
        order_place(
            actor=s.actor,
            account=s.account,
            asset=w.cea,
            side="sell",
            mode="listing",
            price_fen=PRICE,
            quantity=per_seller[k],
            client_order_id=f"bench-{batch}-s{k}",
        ).order
        for k, s in enumerate(sell_people)
        if per_seller[k]
    ]
    now = clock.now()
    day = clock.trading_day(now)
    cny = w.cny.pk
    with transaction.atomic():
        _copy(
            Hold._meta.db_table,
            ("account_id", "asset_id", "kind", "reference", "quantity", "remaining", "status", "created_at"),
            [
                (
                    buy_people[i % buyers].account.pk,
                    cny,
                    "order",
                    f"bench-{batch}-b{i}",
                    PRICE + buy_fee,
                    PRICE + buy_fee,
                    "active",
                    now,
                )
                for i in range(trades)
            ],
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT reference, id FROM exchange_hold WHERE reference LIKE %s", [f"bench-{batch}-b%"])
            hold_of = dict(cursor.fetchall())
        _copy(
            Order._meta.db_table,
            (
                "participant_id",
                "account_id",
                "asset_id",
                "side",
                "mode",
                "price_fen",
                "quantity",
                "filled",
                "filled_turnover_fen",
                "fee_fen",
                "status",
                "end_reason",
                "client_order_id",
                "hold_id",
                "trading_day",
                "created_at",
                "ended_at",
            ),
            [
                (
                    buy_people[i % buyers].participant.pk,
                    buy_people[i % buyers].account.pk,
                    w.cea.pk,
                    "buy",
                    "listing",
                    PRICE,
                    1,
                    1,
                    PRICE,
                    buy_fee,
                    "filled",
                    "filled",
                    f"bench-{batch}-b{i}",
                    hold_of[f"bench-{batch}-b{i}"],
                    day,
                    now,
                    now,
                )
                for i in range(trades)
            ],
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT client_order_id, id FROM exchange_order WHERE client_order_id LIKE %s AND side = 'buy'",
                [f"bench-{batch}-b%"],
            )
            order_of = dict(cursor.fetchall())
        charged: dict[int, int] = defaultdict(int)
        filled: dict[int, int] = defaultdict(int)
        rows = []
        for i in range(trades):
            sell = sells[i % len(sells)]
            filled[sell.pk] += 1
            total_fee = fee_for(filled[sell.pk] * PRICE, fee_bp)
            seller_fee, charged[sell.pk] = total_fee - charged[sell.pk], total_fee
            rows.append(
                (
                    w.cea.pk,
                    "listing",
                    order_of[f"bench-{batch}-b{i}"],
                    sell.pk,
                    "buy",
                    PRICE,
                    1,
                    PRICE,
                    buy_fee,
                    seller_fee,
                    day,
                    now,
                )
            )
        _copy(
            Trade._meta.db_table,
            (
                "asset_id",
                "mode",
                "buy_order_id",
                "sell_order_id",
                "aggressor",
                "price_fen",
                "quantity",
                "turnover_fen",
                "buyer_fee_fen",
                "seller_fee_fen",
                "trading_day",
                "created_at",
            ),
            rows,
        )
        Order.objects.filter(pk__in=[s.pk for s in sells]).update(
            filled=F("quantity"),
            filled_turnover_fen=F("quantity") * PRICE,
            status="filled",
            end_reason="filled",
            ended_at=now,
        )
        for sell in sells:
            Order.objects.filter(pk=sell.pk).update(fee_fen=charged[sell.pk])
        held: dict[int, int] = defaultdict(int)
        for i in range(trades):
            held[buy_people[i % buyers].account.pk] += PRICE + buy_fee
        for account_id, amount in held.items():
            Balance.objects.filter(account_id=account_id, asset_id=cny).update(held=F("held") + amount)
    with connection.cursor() as cursor:
        for table in ("exchange_trade", "exchange_order", "exchange_hold"):
            cursor.execute(f"ANALYZE {table}")


def matching(w: World, orders: int, traders: int = 20) -> float:
    """Place ``orders`` through ``order_place``, sells resting and buys crossing them; return seconds."""
    import time

    batch = next(_ids)
    sellers = holders(traders, label=f"mseller{batch}")
    buyers = holders(traders, label=f"mbuyer{batch}")
    give_units(w, [s.account for s in sellers], orders)
    give_cash(w, [b.account for b in buyers], orders * PRICE * 2)
    begin = time.perf_counter()
    for n in range(orders):
        people = sellers if n % 2 == 0 else buyers
        who = people[(n // 2) % traders]
        order_place(
            actor=who.actor,
            account=who.account,
            asset=w.cea,
            side="sell" if n % 2 == 0 else "buy",
            mode="listing",
            price_fen=PRICE,
            quantity=1 + n % 3 if n % 2 == 0 else 1 + (n - 1) % 3,
            client_order_id=f"m{batch}-{n}",
        )
    return time.perf_counter() - begin
