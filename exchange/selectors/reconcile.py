"""Check the ledger's invariants (docs/architecture.md, The ledger and its invariants) on live data, set-wise in SQL.

1. every transaction balances per asset;
2. each balance equals the sum of its postings, ``0 <= held <= total`` for participant balances, and
   ``held`` equals what the active holds reserve;
3. per asset: issued (minus the issuance account's balance) equals holdings plus the sinks, and for
   serialised assets the serial numbers handed out;
4. serial blocks of an asset don't overlap, cover exactly the issued range, agree with the balances and
   holds, sit in the state their account implies, and adjacent blocks of one holding are merged;
5. the journal and the audit trail agree: every entry has an audit event (one whose object is the entry,
   or whose payload names it as ``transaction``), the event states the entry (its ``entry_digest``: kind,
   time and postings, ``exchange.audit_proof.entry_digest``), and no event names an object that isn't there;
6. each posting's running balance (``balance_after``) is the sum of its account's postings in the asset
   up to it;
7. the journal's times do not go backwards as its ids go up (beyond a tolerance for concurrent writers).

Each check is one query, linear in the rows it reads (joins, aggregates and window functions); none loops
over rows in Python except to report violations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext_noop

# A check's SQL is text, or a function that builds it (from the installed models, or a setting).
Sql = str | Callable[[], str | None]
CHECKS: list[tuple[str, Sql, Callable[[tuple], Finding]]] = []


class Finding(str):
    """What a check found in one row: a ``str``, its English text (what the nightly task logs), with its
    message marked for translation and its figures, so that ``manage.py reconcile`` says it in the reader's
    language (``text(gettext)``)."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Finding:
        finding = super().__new__(cls, template % params)
        finding.template, finding.params = template, params
        return finding

    def text(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.template) % self.params


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    message: Finding

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.message}"


# A check's name is its key (a violation carries it, the nightly task logs it), kept in English and marked for
# translation: manage.py reconcile shows it in the reader's language.
def check(invariant: str, sql: Sql) -> Callable[[Callable[[tuple], Finding]], Callable[[tuple], Finding]]:
    def register(describe: Callable[[tuple], Finding]) -> Callable[[tuple], Finding]:
        CHECKS.append((invariant, sql, describe))
        return describe

    return register


@check(
    gettext_noop("1 balanced"),
    """SELECT transaction_id, asset_id, SUM(quantity) FROM exchange_posting
       GROUP BY transaction_id, asset_id HAVING SUM(quantity) <> 0 ORDER BY transaction_id LIMIT 100""",
)
def _unbalanced(row: tuple) -> Finding:
    return Finding(
        gettext_noop("transaction %(txn)s does not balance in asset %(asset)s: net %(net)s"),
        txn=row[0],
        asset=row[1],
        net=row[2],
    )


@check(
    gettext_noop("2 balance = postings"),
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
def _balance_vs_postings(row: tuple) -> Finding:
    if row[2] is None:
        return Finding(
            gettext_noop("account %(account)s asset %(asset)s: postings sum to %(sum)s but there is no balance row"),
            account=row[0],
            asset=row[1],
            sum=row[3],
        )
    return Finding(
        gettext_noop("account %(account)s asset %(asset)s: balance %(balance)s but postings sum to %(sum)s"),
        account=row[0],
        asset=row[1],
        balance=row[2],
        sum=row[3],
    )


@check(
    gettext_noop("2 held within total"),
    """SELECT account_id, asset_id, total, held FROM exchange_balance
        WHERE NOT allow_negative AND (held < 0 OR held > total) LIMIT 100""",
)
def _held_range(row: tuple) -> Finding:
    return Finding(
        gettext_noop("account %(account)s asset %(asset)s: held %(held)s outside 0..%(total)s"),
        account=row[0],
        asset=row[1],
        held=row[3],
        total=row[2],
    )


@check(
    gettext_noop("2 held = active holds"),
    """SELECT b.account_id, b.asset_id, b.held, COALESCE(h.reserved, 0)
         FROM exchange_balance b
         LEFT JOIN (SELECT account_id, asset_id, SUM(remaining) AS reserved FROM exchange_hold
                     WHERE status = 'active' GROUP BY account_id, asset_id) h
           ON h.account_id = b.account_id AND h.asset_id = b.asset_id
        WHERE b.held <> COALESCE(h.reserved, 0) LIMIT 100""",
)
def _held_vs_holds(row: tuple) -> Finding:
    return Finding(
        gettext_noop("account %(account)s asset %(asset)s: held %(held)s but active holds reserve %(reserved)s"),
        account=row[0],
        asset=row[1],
        held=row[2],
        reserved=row[3],
    )


@check(
    gettext_noop("3 supply conserved"),
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
def _supply(row: tuple) -> Finding:
    code, issued, outstanding, handed_out, serialised = row
    if serialised:
        return Finding(
            gettext_noop("%(code)s: issued %(issued)s, held and sunk %(outstanding)s, serials handed out %(serials)s"),
            code=code,
            issued=issued,
            outstanding=outstanding,
            serials=handed_out,
        )
    return Finding(
        gettext_noop("%(code)s: issued %(issued)s, held and sunk %(outstanding)s"),
        code=code,
        issued=issued,
        outstanding=outstanding,
    )


@check(
    gettext_noop("4 blocks don't overlap and leave no gap"),
    """SELECT a.code, s.first, s.last, s.prev_last FROM (
           SELECT asset_id, first, last,
                  LAG(last) OVER (PARTITION BY asset_id ORDER BY first) AS prev_last
             FROM exchange_serialblock) s
         JOIN exchange_asset a ON a.id = s.asset_id
        WHERE (s.prev_last IS NULL AND s.first <> 1) OR (s.prev_last IS NOT NULL AND s.first <> s.prev_last + 1)
        LIMIT 100""",
)
def _overlap(row: tuple) -> Finding:
    code, first, last, prev_last = row
    if prev_last is None:
        return Finding(gettext_noop("%(code)s: the first block starts at %(first)s, not 1"), code=code, first=first)
    if first <= prev_last:
        return Finding(
            gettext_noop("%(code)s: block %(first)s-%(last)s overlaps the block ending at %(end)s"),
            code=code,
            first=first,
            last=last,
            end=prev_last,
        )
    return Finding(
        gettext_noop("%(code)s: serials %(first)s-%(last)s are in no block"),
        code=code,
        first=prev_last + 1,
        last=first - 1,
    )


@check(
    gettext_noop("4 blocks cover the issued range"),
    """SELECT a.code, a.next_serial - 1, COALESCE(MAX(b.last), 0), COALESCE(SUM(b.last - b.first + 1), 0)
         FROM exchange_asset a LEFT JOIN exchange_serialblock b ON b.asset_id = a.id
        WHERE a.serialised
        GROUP BY a.id, a.code, a.next_serial
       HAVING COALESCE(MAX(b.last), 0) <> a.next_serial - 1
           OR COALESCE(SUM(b.last - b.first + 1), 0) <> a.next_serial - 1
        LIMIT 100""",
)
def _coverage(row: tuple) -> Finding:
    return Finding(
        gettext_noop("%(code)s: %(serials)s serials handed out, blocks end at %(end)s and hold %(held)s"),
        code=row[0],
        serials=row[1],
        end=row[2],
        held=row[3],
    )


@check(
    gettext_noop("4 blocks = balances"),
    """SELECT b.account_id, b.asset_id, b.total, b.held, COALESCE(s.all_units, 0), COALESCE(s.held_units, 0)
         FROM exchange_balance b
         JOIN exchange_asset a ON a.id = b.asset_id AND a.serialised
         JOIN exchange_account acc ON acc.id = b.account_id AND acc.kind <> 'issuance'
         LEFT JOIN (SELECT account_id, asset_id, SUM(last - first + 1) AS all_units,
                           SUM(CASE WHEN state IN ('held', 'frozen') THEN last - first + 1 ELSE 0 END) AS held_units
                      FROM exchange_serialblock GROUP BY account_id, asset_id) s
           ON s.account_id = b.account_id AND s.asset_id = b.asset_id
        WHERE b.total <> COALESCE(s.all_units, 0) OR b.held <> COALESCE(s.held_units, 0)
        LIMIT 100""",
)
def _blocks_vs_balance(row: tuple) -> Finding:
    return Finding(
        gettext_noop(
            "account %(account)s asset %(asset)s: balance %(balance)s (%(held)s held) but blocks hold %(blocks)s "
            "(%(blocks_held)s held)"
        ),
        account=row[0],
        asset=row[1],
        balance=row[2],
        held=row[3],
        blocks=row[4],
        blocks_held=row[5],
    )


@check(
    gettext_noop("4 blocks = holds"),
    """SELECT h.id, h.remaining, COALESCE(SUM(b.last - b.first + 1), 0)
         FROM exchange_hold h JOIN exchange_asset a ON a.id = h.asset_id AND a.serialised
         LEFT JOIN exchange_serialblock b ON b.hold_id = h.id
        GROUP BY h.id, h.remaining
       HAVING h.remaining <> COALESCE(SUM(b.last - b.first + 1), 0)
        LIMIT 100""",
)
def _blocks_vs_holds(row: tuple) -> Finding:
    return Finding(
        gettext_noop("hold %(hold)s: %(remaining)s remaining but its blocks hold %(blocks)s"),
        hold=row[0],
        remaining=row[1],
        blocks=row[2],
    )


@check(
    gettext_noop("4 block state matches its account"),
    """SELECT b.id, a.code, b.first, b.last, b.state, acc.number, acc.kind
         FROM exchange_serialblock b
         JOIN exchange_account acc ON acc.id = b.account_id
         JOIN exchange_asset a ON a.id = b.asset_id
        WHERE NOT ((acc.kind = 'retirement' AND b.state = 'retired')
                OR (acc.kind = 'cancellation' AND b.state = 'cancelled')
                OR (acc.kind = 'surrender' AND b.state = 'surrendered')
                OR (acc.kind IN ('holding', 'fee', 'clearing') AND b.state IN ('available', 'held', 'frozen')))
        LIMIT 100""",
)
def _block_state(row: tuple) -> Finding:
    return Finding(
        gettext_noop("%(code)s %(first)s-%(last)s: state %(state)s in %(kind)s account %(account)s"),
        code=row[1],
        first=row[2],
        last=row[3],
        state=row[4],
        kind=row[6],
        account=row[5],
    )


@check(
    gettext_noop("4 adjacent blocks merged"),
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
def _unmerged(row: tuple) -> Finding:
    return Finding(
        gettext_noop("%(code)s: blocks meeting at %(last)s|%(first)s have one holder and state but are not merged"),
        code=row[0],
        last=row[1],
        first=row[2],
    )


# --- 5: the journal and the audit trail ---------------------------------------------------------------
# The events that record a journal entry: its object is the entry, or its payload names it. Read with
# patterns, not a JSON cast, so that an event whose payload was mangled is reported, not a crash. Read once
# (MATERIALIZED): inlined into an anti-join, the patterns ran once per (entry, event) pair, which made the
# check quadratic in the journal's length (minutes at a million events).
_LINKS = r"""
    links AS MATERIALIZED (
        SELECT e.seq,
               CASE WHEN e.object_type = 'transaction' THEN substring(e.object_id FROM '^([0-9]{1,18})$')
                    ELSE substring(e.payload FROM '"transaction":"([0-9]{1,18})"') END::bigint AS txn,
               substring(e.payload FROM '"entry_digest":"([0-9a-f]{64})"') AS digest
          FROM exchange_auditevent e
         WHERE e.object_type = 'transaction' OR e.payload LIKE '%"transaction":"%'
    )"""
_TIME = """to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# What each entry's event should state: exchange.audit_proof.entry_digest, recomputed from the journal.
_ENTRIES = f"""
    entries AS (
        SELECT t.id, t.kind, encode(sha256(convert_to(t.kind || '|' || {_TIME} || '|' || COALESCE(
                   string_agg(p.account_id || ':' || p.asset_id || ':' || p.quantity, ';'
                              ORDER BY p.account_id, p.asset_id, p.quantity), ''), 'UTF8')), 'hex') AS digest
          FROM exchange_transaction t LEFT JOIN exchange_posting p ON p.transaction_id = t.id
         GROUP BY t.id
    )"""
_POSTINGS_OF = """(SELECT string_agg(acc.number || ' ' || p.quantity || ' ' || a.code
                                || CASE WHEN a.kind = 'cash' THEN ' fen' ELSE '' END, ', ' ORDER BY p.id)
                     FROM exchange_posting p JOIN exchange_account acc ON acc.id = p.account_id
                     JOIN exchange_asset a ON a.id = p.asset_id WHERE p.transaction_id = t.id)"""


@check(
    gettext_noop("5 every entry has its audit event"),
    f"""WITH {_LINKS}
       SELECT t.id, t.kind, t.created_at, {_POSTINGS_OF} FROM exchange_transaction t
        WHERE NOT EXISTS (SELECT 1 FROM links l WHERE l.txn = t.id)
        ORDER BY t.id LIMIT 100""",
)
def _entry_without_event(row: tuple) -> Finding:
    return Finding(
        gettext_noop("transaction %(txn)s (%(kind)s, %(time)s) has no audit event; its postings: %(postings)s"),
        txn=row[0],
        kind=row[1],
        time=row[2].isoformat(),
        postings=row[3],
    )


@check(
    gettext_noop("5 the event states its entry"),
    f"""WITH {_LINKS}, {_ENTRIES}
       SELECT l.seq, l.txn, e.kind, l.digest, e.digest FROM links l JOIN entries e ON e.id = l.txn
        WHERE l.digest IS NOT NULL AND l.digest <> e.digest
       UNION ALL
       SELECT NULL, e.id, e.kind, NULL, e.digest FROM entries e
        WHERE e.id >= (SELECT MIN(txn) FROM links WHERE digest IS NOT NULL)
          AND EXISTS (SELECT 1 FROM links l WHERE l.txn = e.id)
          AND NOT EXISTS (SELECT 1 FROM links l WHERE l.txn = e.id AND l.digest IS NOT NULL)
        ORDER BY 2 LIMIT 100""",
)
def _event_vs_entry(row: tuple) -> Finding:
    seq, txn, kind, stated, actual = row
    if seq is None:
        return Finding(
            gettext_noop("transaction %(txn)s (%(kind)s): no audit event states its postings (entry_digest)"),
            txn=txn,
            kind=kind,
        )
    return Finding(
        gettext_noop(
            "transaction %(txn)s (%(kind)s): its kind, time or postings are not what audit event %(seq)s states "
            "(digest %(stated)s, the journal gives %(actual)s)"
        ),
        txn=txn,
        kind=kind,
        seq=seq,
        stated=stated,
        actual=actual,
    )


def _orphans_sql() -> str | None:
    """Events whose object is a row that isn't there: one anti-join per model that has events."""
    parts = [
        f"""WITH {_LINKS}
        SELECT e.seq, 'transaction', COALESCE(l.txn::text, e.object_id) FROM links l
          JOIN exchange_auditevent e ON e.seq = l.seq
         WHERE (l.txn IS NULL AND e.object_type = 'transaction')
            OR (l.txn IS NOT NULL AND NOT EXISTS (SELECT 1 FROM exchange_transaction t WHERE t.id = l.txn))"""
    ]
    for model in apps.get_models():
        if model._meta.app_label not in {"exchange", "accounts", "auth"} or model._meta.model_name == "transaction":
            continue
        table, pk = model._meta.db_table, model._meta.pk.column
        # Session closes recorded before markets were rows named their trading day as a "market" object.
        legacy = " AND e.object_id ~ '^[0-9]+$'" if model._meta.model_name == "market" else ""
        parts.append(
            f"""SELECT e.seq, e.object_type, e.object_id FROM exchange_auditevent e
                 WHERE e.object_type = '{model._meta.model_name}'{legacy}
                   AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.{pk}::text = e.object_id)"""
        )
    return "SELECT * FROM (" + " UNION ALL ".join(f"({p})" for p in parts) + ") o ORDER BY 1 LIMIT 100"


@check(gettext_noop("5 no event without its object"), _orphans_sql)
def _orphan_event(row: tuple) -> Finding:
    return Finding(
        gettext_noop("audit event %(seq)s records %(type)s %(id)s, which does not exist"),
        seq=row[0],
        type=row[1],
        id=row[2],
    )


# --- 6, 7: running balances and the journal's order ---------------------------------------------------
@check(
    gettext_noop("6 running balances"),
    """SELECT s.id, s.transaction_id, acc.number, a.code, s.balance_after, s.running FROM (
           SELECT id, transaction_id, account_id, asset_id, balance_after,
                  SUM(quantity) OVER (PARTITION BY account_id, asset_id ORDER BY id) AS running
             FROM exchange_posting) s
         JOIN exchange_account acc ON acc.id = s.account_id
         JOIN exchange_asset a ON a.id = s.asset_id
        WHERE s.balance_after <> s.running
        ORDER BY s.id LIMIT 100""",
)
def _running_balance(row: tuple) -> Finding:
    return Finding(
        gettext_noop(
            "posting %(posting)s (transaction %(txn)s, account %(account)s, %(asset)s): balance after %(after)s, "
            "but the postings up to it sum to %(sum)s"
        ),
        posting=row[0],
        txn=row[1],
        account=row[2],
        asset=row[3],
        after=row[4],
        sum=row[5],
    )


def _order_sql() -> str:
    tolerance = int(settings.GREENLEDGER.get("JOURNAL_CLOCK_TOLERANCE_SECONDS", 300))
    return f"""SELECT id, created_at, previous_id, previous_at FROM (
                   SELECT id, created_at, LAG(id) OVER w AS previous_id, LAG(created_at) OVER w AS previous_at
                     FROM exchange_transaction WINDOW w AS (ORDER BY id)) s
                WHERE created_at < previous_at - interval '{tolerance} seconds'
                ORDER BY id LIMIT 100"""


@check(gettext_noop("7 journal times follow its order"), _order_sql)
def _out_of_order(row: tuple) -> Finding:
    return Finding(
        gettext_noop(
            "transaction %(txn)s is dated %(time)s, before transaction %(previous)s (%(previous_time)s) that "
            "precedes it"
        ),
        txn=row[0],
        time=row[1].isoformat(),
        previous=row[2],
        previous_time=row[3].isoformat(),
    )


def reconcile(on_check: Callable[[int, str, int], None] | None = None) -> Iterator[Violation]:
    """Yield every violation found (at most 100 per check).

    ``on_check(index, invariant, violations)`` is called as each check finishes (for progress reports).
    """
    with connection.cursor() as cursor:
        for index, (invariant, sql, describe) in enumerate(CHECKS, start=1):
            text = sql() if callable(sql) else sql
            if text is None:
                if on_check is not None:
                    on_check(index, invariant, 0)
                continue
            cursor.execute(text)
            rows = cursor.fetchall()
            for row in rows:
                yield Violation(invariant, describe(row))
            if on_check is not None:
                on_check(index, invariant, len(rows))


def check_names() -> list[str]:
    return [invariant for invariant, _, _ in CHECKS]
