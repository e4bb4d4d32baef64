"""Check the ledger's invariants (docs/architecture.md, The ledger and its invariants) on live data, set-wise in SQL.

1. every transaction balances per asset;
2. each balance equals the sum of its postings, ``0 <= held <= total`` for participant balances, and
   ``held`` equals what the active holds reserve;
3. per asset: issued (minus the issuance account's balance) equals holdings plus the sinks, and for
   serialised assets the serial numbers handed out;
4. serial blocks of an asset don't overlap, cover exactly the issued range, agree with the balances and
   holds, sit in the state their account implies, and adjacent blocks of one holding are merged.

Each check is one query; none loops over rows in Python except to report violations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection

CHECKS: list[tuple[str, str, Callable[[tuple], str]]] = []


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    message: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.message}"


def check(invariant: str, sql: str) -> Callable[[Callable[[tuple], str]], Callable[[tuple], str]]:
    def register(describe: Callable[[tuple], str]) -> Callable[[tuple], str]:
        CHECKS.append((invariant, sql, describe))
        return describe

    return register


@check(
    "1 balanced",
    """SELECT transaction_id, asset_id, SUM(quantity) FROM exchange_posting
       GROUP BY transaction_id, asset_id HAVING SUM(quantity) <> 0 ORDER BY transaction_id LIMIT 100""",
)
def _unbalanced(row: tuple) -> str:
    return f"transaction {row[0]} does not balance in asset {row[1]}: net {row[2]}"


@check(
    "2 balance = postings",
    """SELECT b.account_id, b.asset_id, b.total, COALESCE(p.net, 0)
         FROM exchange_balance b
         LEFT JOIN (SELECT account_id, asset_id, SUM(quantity) AS net FROM exchange_posting
                     GROUP BY account_id, asset_id) p
           ON p.account_id = b.account_id AND p.asset_id = b.asset_id
        WHERE b.total <> COALESCE(p.net, 0)
       UNION ALL
       SELECT p.account_id, p.asset_id, NULL, p.net
         FROM (SELECT account_id, asset_id, SUM(quantity) AS net FROM exchange_posting
                GROUP BY account_id, asset_id) p
        WHERE NOT EXISTS (SELECT 1 FROM exchange_balance b
                           WHERE b.account_id = p.account_id AND b.asset_id = p.asset_id)
       LIMIT 100""",
)
def _balance_vs_postings(row: tuple) -> str:
    if row[2] is None:
        return f"account {row[0]} asset {row[1]}: postings sum to {row[3]} but there is no balance row"
    return f"account {row[0]} asset {row[1]}: balance {row[2]} but postings sum to {row[3]}"


@check(
    "2 held within total",
    """SELECT account_id, asset_id, total, held FROM exchange_balance
        WHERE NOT allow_negative AND (held < 0 OR held > total) LIMIT 100""",
)
def _held_range(row: tuple) -> str:
    return f"account {row[0]} asset {row[1]}: held {row[3]} outside 0..{row[2]}"


@check(
    "2 held = active holds",
    """SELECT b.account_id, b.asset_id, b.held, COALESCE(h.reserved, 0)
         FROM exchange_balance b
         LEFT JOIN (SELECT account_id, asset_id, SUM(remaining) AS reserved FROM exchange_hold
                     WHERE status = 'active' GROUP BY account_id, asset_id) h
           ON h.account_id = b.account_id AND h.asset_id = b.asset_id
        WHERE b.held <> COALESCE(h.reserved, 0) LIMIT 100""",
)
def _held_vs_holds(row: tuple) -> str:
    return f"account {row[0]} asset {row[1]}: held {row[2]} but active holds reserve {row[3]}"


@check(
    "3 supply conserved",
    """SELECT a.code, COALESCE(i.issued, 0), COALESCE(o.outstanding, 0), a.next_serial - 1, a.serialised
         FROM exchange_asset a
         LEFT JOIN (SELECT b.asset_id, -SUM(b.total) AS issued FROM exchange_balance b
                      JOIN exchange_account acc ON acc.id = b.account_id AND acc.kind = 'issuance'
                     GROUP BY b.asset_id) i ON i.asset_id = a.id
         LEFT JOIN (SELECT b.asset_id, SUM(b.total) AS outstanding FROM exchange_balance b
                      JOIN exchange_account acc ON acc.id = b.account_id AND acc.kind <> 'issuance'
                     GROUP BY b.asset_id) o ON o.asset_id = a.id
        WHERE COALESCE(i.issued, 0) <> COALESCE(o.outstanding, 0)
           OR (a.serialised AND COALESCE(i.issued, 0) <> a.next_serial - 1)
        LIMIT 100""",
)
def _supply(row: tuple) -> str:
    code, issued, outstanding, handed_out, serialised = row
    message = f"{code}: issued {issued}, held and sunk {outstanding}"
    return message + (f", serials handed out {handed_out}" if serialised else "")


@check(
    "4 blocks don't overlap and leave no gap",
    """SELECT a.code, s.first, s.last, s.prev_last FROM (
           SELECT asset_id, first, last,
                  LAG(last) OVER (PARTITION BY asset_id ORDER BY first) AS prev_last
             FROM exchange_serialblock) s
         JOIN exchange_asset a ON a.id = s.asset_id
        WHERE (s.prev_last IS NULL AND s.first <> 1) OR (s.prev_last IS NOT NULL AND s.first <> s.prev_last + 1)
        LIMIT 100""",
)
def _overlap(row: tuple) -> str:
    code, first, last, prev_last = row
    if prev_last is None:
        return f"{code}: the first block starts at {first}, not 1"
    if first <= prev_last:
        return f"{code}: block {first}-{last} overlaps the block ending at {prev_last}"
    return f"{code}: serials {prev_last + 1}-{first - 1} are in no block"


@check(
    "4 blocks cover the issued range",
    """SELECT a.code, a.next_serial - 1, COALESCE(MAX(b.last), 0), COALESCE(SUM(b.last - b.first + 1), 0)
         FROM exchange_asset a LEFT JOIN exchange_serialblock b ON b.asset_id = a.id
        WHERE a.serialised
        GROUP BY a.id, a.code, a.next_serial
       HAVING COALESCE(MAX(b.last), 0) <> a.next_serial - 1
           OR COALESCE(SUM(b.last - b.first + 1), 0) <> a.next_serial - 1
        LIMIT 100""",
)
def _coverage(row: tuple) -> str:
    return f"{row[0]}: {row[1]} serials handed out, blocks end at {row[2]} and hold {row[3]}"


@check(
    "4 blocks = balances",
    """SELECT b.account_id, b.asset_id, b.total, b.held, COALESCE(s.all_units, 0), COALESCE(s.held_units, 0)
         FROM exchange_balance b
         JOIN exchange_asset a ON a.id = b.asset_id AND a.serialised
         JOIN exchange_account acc ON acc.id = b.account_id AND acc.kind <> 'issuance'
         LEFT JOIN (SELECT account_id, asset_id, SUM(last - first + 1) AS all_units,
                           SUM(CASE WHEN state = 'held' THEN last - first + 1 ELSE 0 END) AS held_units
                      FROM exchange_serialblock GROUP BY account_id, asset_id) s
           ON s.account_id = b.account_id AND s.asset_id = b.asset_id
        WHERE b.total <> COALESCE(s.all_units, 0) OR b.held <> COALESCE(s.held_units, 0)
        LIMIT 100""",
)
def _blocks_vs_balance(row: tuple) -> str:
    return (
        f"account {row[0]} asset {row[1]}: balance {row[2]} ({row[3]} held) "
        f"but blocks hold {row[4]} ({row[5]} held)"
    )


@check(
    "4 blocks = holds",
    """SELECT h.id, h.remaining, COALESCE(SUM(b.last - b.first + 1), 0)
         FROM exchange_hold h JOIN exchange_asset a ON a.id = h.asset_id AND a.serialised
         LEFT JOIN exchange_serialblock b ON b.hold_id = h.id
        GROUP BY h.id, h.remaining
       HAVING h.remaining <> COALESCE(SUM(b.last - b.first + 1), 0)
        LIMIT 100""",
)
def _blocks_vs_holds(row: tuple) -> str:
    return f"hold {row[0]}: {row[1]} remaining but its blocks hold {row[2]}"


@check(
    "4 block state matches its account",
    """SELECT b.id, a.code, b.first, b.last, b.state, acc.number, acc.kind
         FROM exchange_serialblock b
         JOIN exchange_account acc ON acc.id = b.account_id
         JOIN exchange_asset a ON a.id = b.asset_id
        WHERE NOT ((acc.kind = 'retirement' AND b.state = 'retired')
                OR (acc.kind = 'cancellation' AND b.state = 'cancelled')
                OR (acc.kind = 'surrender' AND b.state = 'surrendered')
                OR (acc.kind IN ('holding', 'fee', 'clearing') AND b.state IN ('available', 'held')))
        LIMIT 100""",
)
def _block_state(row: tuple) -> str:
    return f"{row[1]} {row[2]}-{row[3]}: state {row[4]} in {row[6]} account {row[5]}"


@check(
    "4 adjacent blocks merged",
    """SELECT a.code, s.prev_last, s.first FROM (
           SELECT asset_id, first, account_id, state, hold_id,
                  LAG(last) OVER w AS prev_last, LAG(account_id) OVER w AS prev_account,
                  LAG(state) OVER w AS prev_state, LAG(hold_id) OVER w AS prev_hold
             FROM exchange_serialblock WINDOW w AS (PARTITION BY asset_id ORDER BY first)) s
         JOIN exchange_asset a ON a.id = s.asset_id
        WHERE s.prev_last + 1 = s.first AND s.prev_account = s.account_id AND s.prev_state = s.state
          AND ((s.prev_hold IS NULL AND s.hold_id IS NULL) OR s.prev_hold = s.hold_id)
        LIMIT 100""",
)
def _unmerged(row: tuple) -> str:
    return f"{row[0]}: blocks meeting at {row[1]}|{row[2]} have one holder and state but are not merged"


def reconcile(on_check: Callable[[int, str, int], None] | None = None) -> Iterator[Violation]:
    """Yield every violation found (at most 100 per check).

    ``on_check(index, invariant, violations)`` is called as each check finishes (for progress reports).
    """
    with connection.cursor() as cursor:
        for index, (invariant, sql, describe) in enumerate(CHECKS, start=1):
            cursor.execute(sql)
            rows = cursor.fetchall()
            for row in rows:
                yield Violation(invariant, describe(row))
            if on_check is not None:
                on_check(index, invariant, len(rows))


def check_names() -> list[str]:
    return [invariant for invariant, _, _ in CHECKS]
