-- A transfer in one statement: what transfer_create does for the common transfer (lowest serials first),
-- its Idempotency-Key claim and kept answer included.
--
-- In order: for a transfer to another participant (p_cross), the market's rulebook in effect on the day
-- (exchange.selectors.rulebooks.rulebook_for's version) decides: 'non_trade_only' refuses it (SQLSTATE GL002:
-- non_trade_transfer_required), and a rulebook without the trusted list leaves p_trust_participant unused.
-- Then, when p_trust_participant is given, the destination must be on that participant's approved
-- trusted list (exchange.services.trust.needs_delay's rule), else it answers 'untrusted' having written
-- nothing (the service then makes a pending transfer). With a key (p_claim_key), the key is claimed as
-- exchange.services.idempotency claims every key: its advisory lock tried without waiting ('busy' if a
-- twin holds it: the service polls, then answers request_in_progress), then whether it has an
-- IdempotentRequest row ('claimed': the service replays or refuses it as a conflict); the row, with the
-- answer, is written at the end. Then it opens the
-- journal entry, does the balance bookkeeping as ledger_post does it (greenledger_balances_post: the two
-- balance rows locked in key order, the destination's created, what is available checked, the balances and
-- both postings written), takes the lowest available blocks of the source
-- (greenledger_blocks_take, as ledger_post takes them: only the blocks it takes are read), merges the
-- moved ranges into the destination's adjacent blocks (greenledger_blocks_put, as ledger_post does),
-- writes the serial movements, the audit event (greenledger_audit_record) and, with a key, the answer
-- (p_answer1 || entry id || p_answer2, the bytes KeyedRequest.run keeps). A refusal is an error (SQLSTATE
-- GL001, account, asset, available and requested in its detail as JSON), so that a call made as a
-- statement of its own (autocommit: one round trip, one transaction) leaves nothing behind, its key's row
-- included. Every trigger and constraint applies to its statements as to any other.
--
-- Its statements name one transfer's rows, so their plans are generic (plan_cache_mode): a plan made for each
-- call's values cost more than the statement.
--
-- The service builds the event's payload and canonical body with the entry id and the ranges left out
-- (p_body1 .. p_body3, p_pay1 .. p_pay2); the function splices them in before hashing.
CREATE OR REPLACE FUNCTION greenledger_transfer(
    p_user bigint, p_participant bigint, p_label text, p_scope text, p_hash text, p_memo text,
    p_at timestamptz, p_source bigint, p_dest bigint, p_asset bigint, p_qty bigint,
    p_action text, p_body1 text, p_body2 text, p_body3 text, p_pay1 text, p_pay2 text, p_audit_lock bigint,
    p_trust_participant bigint, p_trust_at timestamptz,
    p_claim_key text, p_claim_method text, p_claim_path text, p_claim_hash text, p_claim_lock_class int,
    p_answer1 text, p_answer2 text, p_cross boolean
) RETURNS TABLE (status text, txn bigint, available bigint, source_after bigint, dest_after bigint, ranges bigint[])
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_txn bigint;
    v_totals bigint[];
    v_helds bigint[];
    need bigint := p_qty;
    blk record;
    r bigint[] := '{}';
    x bigint; y bigint;
    n int;
    firsts bigint[] := '{}';
    lasts bigint[] := '{}';
    rj text := '';
    v_transfers text;
    v_trusted boolean;
BEGIN
    IF p_cross THEN
        SELECT r.participant_transfers, r.trusted_accounts INTO v_transfers, v_trusted
          FROM exchange_asset a JOIN exchange_rulebook r ON r.market_id = a.market_id
         WHERE a.id = p_asset AND r.effective_from <= (p_trust_at AT TIME ZONE 'Asia/Shanghai')::date
         ORDER BY r.effective_from DESC, r.version DESC
         LIMIT 1;
        IF v_transfers = 'non_trade_only' THEN
            RAISE EXCEPTION 'non_trade_transfer_required' USING ERRCODE = 'GL002';
        END IF;
        IF v_trusted IS FALSE THEN
            p_trust_participant := NULL;
        END IF;
    END IF;
    IF p_trust_participant IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM exchange_trustedaccount t
         WHERE t.participant_id = p_trust_participant AND t.account_id = p_dest AND t.status = 'approved'
           AND t.effective_at <= p_trust_at
    ) THEN
        RETURN QUERY SELECT 'untrusted'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint[];
        RETURN;
    END IF;
    IF p_claim_key IS NOT NULL THEN
        -- The key's lock and row, as exchange.services.idempotency._try_claim takes them.
        IF NOT pg_try_advisory_xact_lock(p_claim_lock_class, hashtext(p_scope || E'\n' || p_claim_key)) THEN
            RETURN QUERY SELECT 'busy'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint[];
            RETURN;
        END IF;
        -- Under the key's lock, a row of the key is one committed before it was taken: the key is claimed.
        -- Its own row is written once, with the answer, at the end.
        IF EXISTS (SELECT 1 FROM exchange_idempotentrequest r WHERE r.scope = p_scope AND r.key = p_claim_key) THEN
            RETURN QUERY SELECT 'claimed'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint[];
            RETURN;
        END IF;
    END IF;
    v_txn := greenledger_journal_open('transfer', p_user, p_participant, p_label, p_scope, NULL, p_hash, p_memo,
                                      '{}', p_at);

    -- The balance bookkeeping as every posting does it (greenledger_balances_post): the two rows locked in
    -- key order (the destination's created if it has none yet), the available amount checked (GL001), the
    -- balances and both postings written. It answers the rows as they were before.
    SELECT b.totals, b.helds INTO v_totals, v_helds
      FROM greenledger_balances_post(v_txn, ARRAY[p_source, p_dest], ARRAY[p_asset, p_asset], ARRAY[-p_qty, p_qty],
                                     ARRAY[0, 0]::bigint[], ARRAY[p_qty, 0], ARRAY[false, false], NULL, NULL,
                                     ARRAY[1, 2], ARRAY[-p_qty, p_qty]) b;

    -- The lowest available serials of the source, taken as every posting takes them (greenledger_blocks_take:
    -- only the blocks it takes are read; whole blocks go, the last one shrinks).
    FOR blk IN SELECT t.first, t.last
                 FROM greenledger_blocks_take(ARRAY[p_source], ARRAY[p_asset], ARRAY[p_qty]) t ORDER BY t.first LOOP
        r := r || ARRAY[blk.first, blk.last];
        need := need - (blk.last - blk.first + 1);
    END LOOP;
    IF need > 0 THEN
        RAISE EXCEPTION 'greenledger: account % asset %: balance shows units that no serial block holds',
            p_source, p_asset USING ERRCODE = 'data_exception';
    END IF;

    -- The moved ranges join the destination's available blocks next to them (greenledger_blocks_put,
    -- as every posting puts its blocks), and each is a serial movement (one INSERT, so the movements'
    -- reference check runs once).
    n := array_length(r, 1) / 2;
    FOR i IN 1 .. n LOOP
        x := r[2 * i - 1];
        y := r[2 * i];
        firsts := firsts || x;
        lasts := lasts || y;
        rj := rj || CASE WHEN i > 1 THEN ',' ELSE '' END || '["' || x || '","' || y || '"]';
    END LOOP;
    INSERT INTO exchange_serialmovement (transaction_id, asset_id, first, last, source_id, destination_id, state)
    SELECT v_txn, p_asset, m.first, m.last, p_source, p_dest, 'available'
      FROM unnest(firsts, lasts) WITH ORDINALITY AS m(first, last, ord)
     ORDER BY m.ord;
    PERFORM greenledger_blocks_put(array_fill(p_asset, ARRAY[n]), firsts, lasts, array_fill(p_dest, ARRAY[n]),
                                   array_fill('available'::text, ARRAY[n]), array_fill(NULL::bigint, ARRAY[n]));
    rj := '[' || rj || ']';

    -- The audit event, written as audit_record writes every event.
    PERFORM greenledger_audit_record(p_at, p_user, p_participant, p_label, p_action, 'transaction', v_txn::text,
                                     p_pay1 || rj || p_pay2, p_body1 || v_txn::text || p_body2 || rj || p_body3,
                                     p_audit_lock);
    IF p_claim_key IS NOT NULL THEN
        INSERT INTO exchange_idempotentrequest (scope, key, method, path, request_hash, status, body, created_at)
        VALUES (p_scope, p_claim_key, p_claim_method, p_claim_path, p_claim_hash, 200,
                p_answer1 || v_txn::text || p_answer2, p_at);
    END IF;
    RETURN QUERY SELECT 'posted'::text, v_txn, v_totals[1] - v_helds[1], v_totals[1] - p_qty, v_totals[2] + p_qty, r;
END
$$;
