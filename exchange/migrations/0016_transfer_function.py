"""A transfer in one statement on PostgreSQL.

``greenledger_transfer`` does on the server what ``transfer_create`` does through ``ledger_post`` for the
common transfer (lowest serials first): open the journal entry under its idempotency key, lock the two
balance rows in key order (creating the destination's), check what is available, take the lowest
available blocks of the source (shrinking the last one), merge the moved ranges into the destination's
adjacent blocks, write the balances, both postings, the serial movements and the audit event (under the
writers' shared advisory lock, hashed as ``audit_record`` hashes). It returns what happened; a refusal
is an error (SQLSTATE GL001, the available quantity in its detail), so that a call made as a statement
of its own (autocommit: one round trip, one transaction) leaves nothing behind. Every trigger and constraint
applies to its statements as to any other: append-only rows, the deferred balance check, postings only
in the entry's own database transaction, non-overlapping blocks.

This is the function as first defined, kept as history; the live definition is
``exchange/sql/greenledger_transfer.sql``, loaded by migration 0024_posting_sql_files.
"""

from django.db import migrations

from core.db import PostgresOnlySQL

TRANSFER_FUNCTION = r"""
CREATE FUNCTION greenledger_transfer(
    p_user bigint, p_participant bigint, p_label text, p_scope text, p_key text, p_hash text, p_memo text,
    p_at timestamptz, p_source bigint, p_dest bigint, p_asset bigint, p_qty bigint,
    p_action text, p_body1 text, p_body2 text, p_body3 text, p_pay1 text, p_pay2 text, p_audit_lock bigint
) RETURNS TABLE (status text, txn bigint, available bigint, source_after bigint, dest_after bigint, ranges bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_txn bigint;
    s_id bigint; s_total bigint; s_held bigint;
    d_id bigint; d_total bigint;
    need bigint := p_qty;
    take bigint;
    blk record;
    nb record;
    r bigint[] := '{}';
    x bigint; y bigint;
    lo_id bigint; hi_id bigint; hi_last bigint;
    rj text := '';
BEGIN
    INSERT INTO exchange_transaction (kind, actor_user_id, actor_participant_id, actor_label, idempotency_scope,
                                      idempotency_key, request_hash, memo, metadata, created_at)
    VALUES ('transfer', p_user, p_participant, p_label, p_scope, p_key, p_hash, p_memo, '{}', p_at)
    ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id INTO v_txn;
    IF v_txn IS NULL THEN
        RETURN QUERY SELECT 'replayed'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint[];
        RETURN;
    END IF;

    -- The balance rows in key order (exchange.locks), the destination's created if it has none yet.
    FOR blk IN SELECT b.id, b.account_id, b.total, b.held FROM exchange_balance b
                WHERE b.account_id IN (p_source, p_dest) AND b.asset_id = p_asset
                ORDER BY b.account_id FOR UPDATE LOOP
        IF blk.account_id = p_source THEN
            s_id := blk.id; s_total := blk.total; s_held := blk.held;
        ELSE
            d_id := blk.id; d_total := blk.total;
        END IF;
    END LOOP;
    IF s_id IS NULL OR s_total - s_held < p_qty THEN
        -- An error, so that the journal row goes too even when this statement is its own transaction.
        RAISE EXCEPTION 'greenledger: insufficient available' USING ERRCODE = 'GL001',
            DETAIL = COALESCE(s_total - s_held, 0)::text;
    END IF;
    IF d_id IS NULL THEN
        INSERT INTO exchange_balance (account_id, asset_id, total, held, allow_negative)
        VALUES (p_dest, p_asset, 0, 0, false) ON CONFLICT (account_id, asset_id) DO NOTHING;
        SELECT b.id, b.total INTO d_id, d_total FROM exchange_balance b
         WHERE b.account_id = p_dest AND b.asset_id = p_asset FOR UPDATE;
    END IF;

    -- The lowest available serials of the source: whole blocks go, the last one shrinks.
    FOR blk IN SELECT b.id, b.first, b.last FROM exchange_serialblock b
                WHERE b.account_id = p_source AND b.asset_id = p_asset AND b.state = 'available'
                ORDER BY b.first LOOP
        EXIT WHEN need = 0;
        take := LEAST(need, blk.last - blk.first + 1);
        IF take = blk.last - blk.first + 1 THEN
            DELETE FROM exchange_serialblock WHERE id = blk.id;
        ELSE
            UPDATE exchange_serialblock SET first = blk.first + take WHERE id = blk.id;
        END IF;
        r := r || ARRAY[blk.first, blk.first + take - 1];
        need := need - take;
    END LOOP;
    IF need > 0 THEN
        RAISE EXCEPTION 'greenledger: account % asset %: balance shows units that no serial block holds',
            p_source, p_asset USING ERRCODE = 'data_exception';
    END IF;

    -- Each moved range joins the destination's available blocks next to it, or becomes a block.
    FOR i IN 1 .. array_length(r, 1) / 2 LOOP
        x := r[2 * i - 1];
        y := r[2 * i];
        lo_id := NULL;
        hi_id := NULL;
        FOR nb IN SELECT b.id, b.first, b.last FROM exchange_serialblock b
                   WHERE b.asset_id = p_asset AND (b.last = x - 1 OR b.first = y + 1)
                     AND b.account_id = p_dest AND b.state = 'available' LOOP
            IF nb.last = x - 1 THEN
                lo_id := nb.id;
            ELSE
                hi_id := nb.id;
                hi_last := nb.last;
            END IF;
        END LOOP;
        IF lo_id IS NOT NULL THEN
            IF hi_id IS NOT NULL THEN
                DELETE FROM exchange_serialblock WHERE id = hi_id;
                UPDATE exchange_serialblock SET last = hi_last WHERE id = lo_id;
            ELSE
                UPDATE exchange_serialblock SET last = y WHERE id = lo_id;
            END IF;
        ELSIF hi_id IS NOT NULL THEN
            UPDATE exchange_serialblock SET first = x WHERE id = hi_id;
        ELSE
            INSERT INTO exchange_serialblock (asset_id, first, last, account_id, state, hold_id)
            VALUES (p_asset, x, y, p_dest, 'available', NULL);
        END IF;
        INSERT INTO exchange_serialmovement (transaction_id, asset_id, first, last, source_id, destination_id, state)
        VALUES (v_txn, p_asset, x, y, p_source, p_dest, 'available');
        rj := rj || CASE WHEN i > 1 THEN ',' ELSE '' END || '["' || x || '","' || y || '"]';
    END LOOP;
    rj := '[' || rj || ']';

    UPDATE exchange_balance SET total = CASE WHEN id = s_id THEN s_total - p_qty ELSE d_total + p_qty END
     WHERE id IN (s_id, d_id);
    INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after)
    VALUES (v_txn, p_source, p_asset, -p_qty, s_total - p_qty), (v_txn, p_dest, p_asset, p_qty, d_total + p_qty);

    -- The audit event, as audit_record writes it: the writers' shared lock, then the sequence number.
    INSERT INTO exchange_auditevent (seq, created_at, actor_user_id, actor_participant_id, actor_label, action,
                                     object_type, object_id, payload, hash)
    SELECT s.seq, p_at, p_user, p_participant, p_label, p_action, 'transaction', v_txn::text, p_pay1 || rj || p_pay2,
           encode(sha256(convert_to(s.seq::text || '|' || p_body1 || v_txn::text || p_body2 || rj || p_body3,
                                    'UTF8')), 'hex')
      FROM (SELECT nextval(pg_get_serial_sequence('exchange_auditevent', 'seq')) AS seq
              FROM (SELECT pg_advisory_xact_lock_shared(p_audit_lock) OFFSET 0) AS lock OFFSET 0) AS s;
    RETURN QUERY SELECT 'posted'::text, v_txn, s_total - s_held, s_total - p_qty, d_total + p_qty, r;
END
$$
"""

FORWARD = [TRANSFER_FUNCTION]
BACKWARD = [
    "DROP FUNCTION IF EXISTS greenledger_transfer(bigint, bigint, text, text, text, text, text, timestamptz, bigint, "
    "bigint, bigint, bigint, text, text, text, text, text, text, bigint)"
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0015_pending_transfer_schedule")]

    operations = [PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD)]
