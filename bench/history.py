"""A long history, bulk-loaded: one account with N cash postings, consistent with its balance row.

Deposits from the issuance account (as the exchange books them), 100 postings a side per journal entry,
written server-side with INSERT ... SELECT in one transaction, so every trigger runs: the postings-in-
their-own-transaction check (once per statement) and the deferred balance check of each entry at commit.
Each entry gets the audit event a deposit records. Then both balance rows are set to the sum of their
postings, as the ledger keeps them.
"""

from __future__ import annotations

from django.db import connection, transaction

PER_ENTRY = 100


def load_history(account_id: int, issuance_id: int, asset_id: int, postings: int) -> None:
    entries = max(1, postings // PER_ENTRY)
    with transaction.atomic(), connection.cursor() as cursor:
        for account, allow_negative in ((account_id, False), (issuance_id, True)):
            cursor.execute(
                "INSERT INTO exchange_balance (account_id, asset_id, total, held, allow_negative) "
                "VALUES (%s, %s, 0, 0, %s) ON CONFLICT (account_id, asset_id) DO NOTHING",
                [account, asset_id, allow_negative],
            )
        cursor.execute(
            "SELECT account_id, total FROM exchange_balance WHERE asset_id = %s AND account_id IN (%s, %s) "
            "ORDER BY account_id FOR UPDATE",
            [asset_id, account_id, issuance_id],
        )
        start = dict(cursor.fetchall())
        # A millisecond apart, ending now: reconcile's invariant 7 (journal times follow its order) allows a
        # few seconds of clock tolerance, not entries backdated by hours before the ones already written.
        cursor.execute(
            "CREATE TEMP TABLE bench_entries ON COMMIT DROP AS "
            "WITH t AS (INSERT INTO exchange_transaction (kind, actor_label, idempotency_scope, request_hash, memo, "
            "  metadata, created_at) SELECT 'deposit', 'system:bench', 'bench', '', 'history ' || g, '{}', "
            "  now() - make_interval(secs => (%s - g) / 1000.0) FROM generate_series(1, %s) g RETURNING id) "
            "SELECT id, (row_number() OVER (ORDER BY id) - 1) AS k FROM t",
            [entries, entries],
        )
        # Deposits of 100 fen: per entry, 100 postings to the account, then 100 from the issuance account.
        cursor.execute(
            "INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after) "
            "SELECT e.id, CASE WHEN s.side = 0 THEN %s ELSE %s END, %s, CASE WHEN s.side = 0 THEN 100 ELSE -100 END, "
            "       CASE WHEN s.side = 0 THEN %s + (e.k * %s + j) * 100 ELSE %s - (e.k * %s + j) * 100 END "
            "FROM bench_entries e CROSS JOIN (VALUES (0), (1)) AS s(side) CROSS JOIN generate_series(1, %s) j "
            "ORDER BY e.id, s.side, j",
            [
                account_id,
                issuance_id,
                asset_id,
                start[account_id],
                PER_ENTRY,
                start[issuance_id],
                PER_ENTRY,
                PER_ENTRY,
            ],
        )
        # Each entry's audit event, as cash_deposit records it (reconcile asks every entry for one that
        # states its postings), hashed as exchange.audit_proof hashes events.
        cursor.execute(
            "INSERT INTO exchange_auditevent (seq, created_at, actor_label, action, object_type, object_id, payload, "
            "  hash) "
            "SELECT s.seq, s.created_at, 'system:bench', 'cash.deposit', 'transaction', s.id::text, s.payload, "
            "       encode(sha256(convert_to(s.seq::text || '|' || '{\"action\":\"cash.deposit\",\"actor\":'"
            "         || '{\"label\":\"system:bench\",\"participant\":null,\"user\":null},\"object\":{\"id\":\"' "
            "         || s.id || '\",\"type\":\"transaction\"},\"payload\":' || s.payload || ',\"time\":\"' "
            "         || s.time || '\"}', 'UTF8')), 'hex') "
            "FROM (SELECT nextval(pg_get_serial_sequence('exchange_auditevent', 'seq')) AS seq, d.* FROM ("
            "  SELECT t.id, t.created_at, "
            "         to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS time, "
            "         '{\"entry_digest\":\"' || encode(sha256(convert_to(t.kind || '|' || "
            "           to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '|' || "
            "           string_agg(p.account_id || ':' || p.asset_id || ':' || p.quantity, ';' "
            "             ORDER BY p.account_id, p.asset_id, p.quantity), 'UTF8')), 'hex') || '\"}' AS payload "
            "    FROM exchange_transaction t JOIN exchange_posting p ON p.transaction_id = t.id "
            "   WHERE t.id IN (SELECT id FROM bench_entries) GROUP BY t.id ORDER BY t.id) d) s"
        )
        total = entries * PER_ENTRY * 100
        cursor.execute(
            "UPDATE exchange_balance SET total = total + CASE WHEN account_id = %s THEN %s ELSE %s END "
            "WHERE asset_id = %s AND account_id IN (%s, %s)",
            [account_id, total, -total, asset_id, account_id, issuance_id],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE exchange_posting")
        cursor.execute("ANALYZE exchange_transaction")
