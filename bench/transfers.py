"""Transfers: the service against the raw-SQL floor, one client and four processes.

The floor is what PostgreSQL itself needs for a transfer, sent with psycopg directly, one statement
after another: lock the two balance rows (SELECT ... ORDER BY ... FOR UPDATE), update each, insert a
journal row and the two postings (one multi-row INSERT), commit. It runs against the same schema and
triggers as the service (the deferred balance check, the posting trigger, append-only), on cash
balances so that no serial block is involved. The service row calls ``transfer_create`` in process,
with an Idempotency-Key, moving serialised allowances (lowest serials first), as the API does. The
fragmented row does the same from sources that hold their units in a thousand blocks or more (every
other ten serials given away), where a transfer that read every block of its source would show it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from bench.checks import FLOOR_SCOPE
from bench.fixtures import Holder

FLOOR_LOCK = (
    "SELECT id, account_id, total, held FROM exchange_balance "
    "WHERE (account_id, asset_id) IN ((%s, %s), (%s, %s)) ORDER BY account_id, asset_id FOR UPDATE"
)
FLOOR_UPDATE = "UPDATE exchange_balance SET total = %s WHERE id = %s"
FLOOR_JOURNAL = (
    "INSERT INTO exchange_transaction (kind, actor_label, idempotency_scope, request_hash, memo, metadata, "
    "created_at) VALUES ('transfer', 'bench', %s, '', '', '{}', now()) RETURNING id"
)
FLOOR_POSTINGS = (
    "INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after) "
    "VALUES (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class Pool:
    holders: list[Holder]
    cea_id: int
    cny_id: int
    url: str


def _pairs(n: int, count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        a = rng.randrange(n)
        b = rng.randrange(n - 1)
        pairs.append((a, b if b < a else b + 1))
    return pairs


def floor_transfers(pool: Pool, count: int, seed: int) -> int:
    """``count`` raw-SQL transfers of cash between random pairs of the pool; returns count."""
    import psycopg

    accounts = [h.account.pk for h in pool.holders]
    asset = pool.cny_id
    with psycopg.connect(pool.url.replace("postgres://", "postgresql://", 1)) as conn:
        cur = conn.cursor()
        for a, b in _pairs(len(accounts), count, seed):
            src, dst = accounts[a], accounts[b]
            qty = 1 + (a + b) % 5
            cur.execute(FLOOR_LOCK, (src, asset, dst, asset) if src < dst else (dst, asset, src, asset))
            rows = {r[1]: r for r in cur.fetchall()}
            s, d = rows[src], rows[dst]
            if s[2] - s[3] < qty:
                raise RuntimeError("floor: insufficient cash")
            cur.execute(FLOOR_UPDATE, (s[2] - qty, s[0]))
            cur.execute(FLOOR_UPDATE, (d[2] + qty, d[0]))
            cur.execute(FLOOR_JOURNAL, (FLOOR_SCOPE,))
            row = cur.fetchone()
            assert row is not None  # the function returns one row
            (txn,) = row
            cur.execute(FLOOR_POSTINGS, (txn, src, asset, -qty, s[2] - qty, txn, dst, asset, qty, d[2] + qty))
            conn.commit()
    return count


def service_transfers(pool: Pool, count: int, seed: int) -> int:
    """``count`` calls of ``transfer_create`` between random pairs of the pool; returns count."""
    from exchange.models import Asset
    from exchange.services.transfers import transfer_create

    cea = Asset.objects.get(pk=pool.cea_id)
    holders = pool.holders
    for i, (a, b) in enumerate(_pairs(len(holders), count, seed)):
        source = holders[a]
        transfer_create(
            actor=source.actor,
            source=source.account,
            destination=holders[b].account,
            asset=cea,
            quantity=1 + (a + b) % 5,
            idempotency_key=f"bench-{seed}-{i}",
        )
    return count


def fragment(w, sources: list[Holder], sink: Holder, blocks: int) -> None:
    """Leave each source ``blocks`` blocks of 10 units: give it ``20 * blocks`` units, then every other
    ten serials to ``sink`` (in batches of 1,000 transfers of named serials)."""
    from bench.fixtures import give_units
    from exchange.models import SerialBlock
    from exchange.services.transfers import MAX_BATCH, TransferOrder, transfers_batch_create

    give_units(w, [s.account for s in sources], 20 * blocks)
    for source in sources:
        base = SerialBlock.objects.get(account=source.account, asset=w.cea).first
        orders = [
            TransferOrder(source.account, sink.account, w.cea, 10, serials=(base + 20 * k + 10, base + 20 * k + 19))
            for k in range(blocks)
        ]
        for start in range(0, len(orders), MAX_BATCH):
            transfers_batch_create(actor=source.actor, transfers=orders[start : start + MAX_BATCH])


def fragmented_transfers(pool: Pool, sources: list[Holder], count: int, seed: int) -> int:
    """``count`` calls of ``transfer_create`` from the fragmented ``sources`` (in turn) to random pool
    accounts; returns count."""
    from exchange.models import Asset
    from exchange.services.transfers import transfer_create

    cea = Asset.objects.get(pk=pool.cea_id)
    rng = random.Random(seed)
    for i in range(count):
        source = sources[i % len(sources)]
        transfer_create(
            actor=source.actor,
            source=source.account,
            destination=pool.holders[rng.randrange(len(pool.holders))].account,
            asset=cea,
            quantity=rng.randint(1, 5),
            idempotency_key=f"bench-frag-{seed}-{i}",
        )
    return count


def timed(fn, *args) -> tuple[int, float]:
    begin = time.perf_counter()
    n = fn(*args)
    return n, time.perf_counter() - begin
