"""Transfers: the service against raw-SQL floors, one client and four processes.

Two floors, sent with psycopg directly, one statement after another, against the same schema and triggers
as the service (the deferred balance check, the journal's reference checks, append-only, the audit event's
projection to participants):

- **the transfer's floor** (``floor_serial_transfers``) writes what a keyed transfer writes, as plain
  statements: the key's claim (its advisory lock and lookup), the journal entry, the two balance rows locked
  and updated and their postings, the source's lowest serial blocks taken and the ranges merged into the
  destination's blocks, the serial movement, the audit event (its hash chained in SQL by the same formula)
  and the key's row with its answer, then commit. The event is the one the service writes, so the books'
  checks after the row hold it to the same rules. It is the floor the single transfer is measured against.
- **the entry's floor** (``floor_transfers``) is PostgreSQL's least for any balanced entry: lock the two
  balance rows (SELECT ... ORDER BY ... FOR UPDATE), update each, insert a journal row and the two postings
  (one multi-row INSERT), commit, on cash balances so that no serial block is involved, with no audit event
  and no key (its entries carry ``FLOOR_SCOPE``). It does about a third of a transfer's work; the table
  shows the service's ratio to it too.

The service row calls ``transfer_create`` in process,
with an Idempotency-Key, moving serialised allowances (lowest serials first), as the API does. The
fragmented row does the same from sources that hold their units in a thousand blocks or more (every
other ten serials given away), where a transfer that read every block of its source would show it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

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


SERIAL_CLAIM = "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s || E'\\n' || %s))"
SERIAL_CLAIMED = "SELECT 1 FROM exchange_idempotentrequest WHERE scope = %s AND key = %s"
SERIAL_JOURNAL = (
    "INSERT INTO exchange_transaction (kind, actor_user_id, actor_participant_id, actor_label, idempotency_scope, "
    "request_hash, memo, metadata, created_at) VALUES ('transfer', %s, %s, %s, %s, %s, '', '{}', %s) RETURNING id"
)
SERIAL_TAKE = (
    "SELECT id, first, last FROM exchange_serialblock WHERE account_id = %s AND asset_id = %s AND state = 'available' "
    "ORDER BY first LIMIT %s"
)
SERIAL_SHRINK = "UPDATE exchange_serialblock SET first = %s WHERE id = %s"
SERIAL_DROP = "DELETE FROM exchange_serialblock WHERE id = ANY(%s)"
# The destination's block ending just below a range and the one starting just above it: each one probe of the
# (asset, last) and (asset, first) indexes, whatever the account holds (an OR of the two read every block).
SERIAL_NEIGHBOURS = (
    "SELECT id, first, last FROM exchange_serialblock WHERE asset_id = %(asset)s AND last = %(below)s "
    "AND account_id = %(account)s AND state = 'available' AND hold_id IS NULL "
    "UNION ALL "
    "SELECT id, first, last FROM exchange_serialblock WHERE asset_id = %(asset)s AND first = %(above)s "
    "AND account_id = %(account)s AND state = 'available' AND hold_id IS NULL"
)
SERIAL_GROW = "UPDATE exchange_serialblock SET first = %s, last = %s WHERE id = %s"
SERIAL_NEW = (
    "INSERT INTO exchange_serialblock (asset_id, first, last, account_id, state, hold_id) "
    "VALUES (%s, %s, %s, %s, 'available', NULL)"
)
SERIAL_MOVE = (
    "INSERT INTO exchange_serialmovement (transaction_id, asset_id, first, last, source_id, destination_id, state) "
    "SELECT %s, %s, m.first, m.last, %s, %s, 'available' FROM unnest(%s::bigint[], %s::bigint[]) AS m(first, last)"
)
SERIAL_EVENT = (
    "INSERT INTO exchange_auditevent (seq, created_at, actor_user_id, actor_participant_id, actor_label, action, "
    "object_type, object_id, payload, hash) SELECT s.seq, %s, %s, %s, %s, 'transfer.create', 'transaction', %s, %s, "
    "encode(sha256(convert_to(s.seq::text || '|' || %s, 'UTF8')), 'hex') "
    "FROM (SELECT nextval('exchange_auditevent_seq_seq'::regclass) AS seq, pg_advisory_xact_lock_shared(%s)) s"
)
SERIAL_KEY = (
    "INSERT INTO exchange_idempotentrequest (scope, key, method, path, request_hash, status, body, created_at) "
    "VALUES (%s, %s, 'POST', 'transfers', %s, 200, %s, %s)"
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


def _move_balances(cur, source: int, dest: int, asset: int, qty: int) -> tuple[int, int]:
    """Lock both balance rows in key order, check what the source has available and write both; return the
    totals after."""
    cur.execute(FLOOR_LOCK, (source, asset, dest, asset) if source < dest else (dest, asset, source, asset))
    rows = {r[1]: r for r in cur.fetchall()}
    s, d = rows[source], rows[dest]
    if s[2] - s[3] < qty:
        raise RuntimeError("floor: insufficient available")
    cur.execute(FLOOR_UPDATE, (s[2] - qty, s[0]))
    cur.execute(FLOOR_UPDATE, (d[2] + qty, d[0]))
    return s[2] - qty, d[2] + qty


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
            source_after, dest_after = _move_balances(cur, src, dst, asset, qty)
            cur.execute(FLOOR_JOURNAL, (FLOOR_SCOPE,))
            row = cur.fetchone()
            assert row is not None  # the function returns one row
            (txn,) = row
            cur.execute(FLOOR_POSTINGS, (txn, src, asset, -qty, source_after, txn, dst, asset, qty, dest_after))
            conn.commit()
    return count


def floor_serial_transfers(pool: Pool, count: int, seed: int) -> int:
    """``count`` raw-SQL keyed transfers of serialised units between random pairs of the pool, each writing
    what ``transfer_create`` writes (see the module's docstring); returns count."""
    import psycopg

    from exchange.audit_proof import canonical_json, entry_digest, event_body, format_time, sha256_hex
    from exchange.locks import AUDIT_LOCK_KEY, IDEMPOTENCY_LOCK_CLASS

    holders = pool.holders
    asset = pool.cea_id
    with psycopg.connect(pool.url.replace("postgres://", "postgresql://", 1)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT code FROM exchange_asset WHERE id = %s", (asset,))
        (code,) = cast(tuple[str], cur.fetchone())
        conn.commit()
        for i, (a, b) in enumerate(_pairs(len(holders), count, seed)):
            source, dest = holders[a], holders[b]
            src, dst = source.account.pk, dest.account.pk
            actor = source.actor
            qty = 1 + (a + b) % 5
            scope, key = f"participant:{actor.participant_id}", f"floor-{seed}-{i}"
            now = datetime.now(UTC)
            request = {
                "source": source.account.number,
                "destination": dest.account.number,
                "asset": code,
                "quantity": qty,
                "memo": "",
                "serials": None,
            }
            digest = sha256_hex(canonical_json({"kind": "transfer", "request": request}))
            cur.execute(SERIAL_CLAIM, (IDEMPOTENCY_LOCK_CLASS, scope, key))
            cur.execute(SERIAL_CLAIMED, (scope, key))
            if cur.fetchone() is not None:
                raise RuntimeError("floor: key already used")
            cur.execute(SERIAL_JOURNAL, (actor.user_id, actor.participant_id, actor.label, scope, digest, now))
            (txn,) = cast(tuple[int], cur.fetchone())
            source_after, dest_after = _move_balances(cur, src, dst, asset, qty)
            cur.execute(FLOOR_POSTINGS, (txn, src, asset, -qty, source_after, txn, dst, asset, qty, dest_after))
            # The source's lowest blocks: at most one a unit.
            cur.execute(SERIAL_TAKE, (src, asset, qty))
            ranges: list[tuple[int, int]] = []
            need = qty
            for block, first, last in cur.fetchall():
                take = min(need, last - first + 1)
                ranges.append((first, first + take - 1))
                if take == last - first + 1:
                    cur.execute(SERIAL_DROP, ([block],))
                else:
                    cur.execute(SERIAL_SHRINK, (first + take, block))
                need -= take
                if not need:
                    break
            # Each range joins the destination's blocks next to it, or is a block of its own.
            for first, last in ranges:
                cur.execute(SERIAL_NEIGHBOURS, {"asset": asset, "below": first - 1, "above": last + 1, "account": dst})
                near = cur.fetchall()
                below = next((n for n in near if n[2] == first - 1), None)
                above = next((n for n in near if n[1] == last + 1), None)
                if below and above:
                    cur.execute(SERIAL_DROP, ([above[0]],))
                    cur.execute(SERIAL_GROW, (below[1], above[2], below[0]))
                elif below:
                    cur.execute(SERIAL_GROW, (below[1], last, below[0]))
                elif above:
                    cur.execute(SERIAL_GROW, (first, above[2], above[0]))
                else:
                    cur.execute(SERIAL_NEW, (asset, first, last, dst))
            cur.execute(SERIAL_MOVE, (txn, asset, src, dst, [r[0] for r in ranges], [r[1] for r in ranges]))
            entry = entry_digest("transfer", now, [(src, asset, -qty), (dst, asset, qty)])
            payload = canonical_json({**request, "ranges": [list(r) for r in ranges], "entry_digest": entry})
            body = event_body(
                time=format_time(now),
                action="transfer.create",
                actor_label=actor.label,
                actor_user=actor.user_id,
                actor_participant=actor.participant_id,
                object_type="transaction",
                object_id=str(txn),
                payload=payload,
            )
            cur.execute(
                SERIAL_EVENT,
                (now, actor.user_id, actor.participant_id, actor.label, str(txn), payload, body, AUDIT_LOCK_KEY),
            )
            cur.execute(SERIAL_KEY, (scope, key, digest, f'{{"model": "exchange.transaction", "id": {txn}}}', now))
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
