-- The balance bookkeeping of a posting, for both posting paths: ledger_post (exchange/services/ledger.py, any
-- number of legs) and greenledger_transfer (one transfer in one statement) call it.
--
-- Given the entry (p_txn), every (account, asset) key it touches with its change (k_total, k_held: holds
-- consumed reduce held), what leaves it from available units (k_outgoing, the figure a refusal names) and
-- whether a row created here may go negative (k_negative: the issuance account), the holds it consumes
-- (h_id, h_use) and its postings in leg order (p_key: the posting's key, its index in k_account; p_quantity),
-- it:
--
-- 1. locks the balance rows in key order (exchange.locks' order, step 5), creating missing rows;
-- 2. locks the consumed holds by id (step 6) and refuses a hold that has ended or has less left than the
--    posting uses (SQLSTATE GL004, detail: hold, status, remaining, requested as JSON), the first in h_id's
--    order;
-- 3. refuses a key whose held amount would go below zero or above its total, unless its row may go
--    negative (SQLSTATE GL001, detail: account, asset, available, requested as JSON), the first in the
--    keys' order;
-- 4. writes the changed balances, inserts the postings in leg order, each with the balance after it, and
--    writes what each consumed hold has left: a hold used up ends, with h_status ('posted', or 'enforced'
--    when a pledge is enforced) and h_at as its end time.
--
-- It returns every key's row as it was locked, before the posting, as arrays in the keys' order (ids, totals,
-- helds, negatives): the caller adds its own changes; and the ids of the holds this posting ended (ended, in
-- id order; empty when it consumed none). A refusal is an error, so nothing of the posting survives, even in
-- autocommit. The caller moves the serial blocks around it (greenledger_blocks_take, greenledger_blocks_put),
-- after this call: the balance locks guard the blocks. The holds are written here, from the rows just locked,
-- so that a settlement consuming a hundred thousand order holds sends two integer arrays, not the rows
-- read back and written again.
--
-- Plain statements over unnest() of the arrays, so that a transfer's two keys cost a few index probes and a
-- settlement's hundred thousand the same few statements. A small posting's plans are generic
-- (plan_cache_mode): a custom plan for each call's arrays cost a transfer's bookkeeping three times its
-- time, planning. A posting of more than 32 keys is planned for its arrays, as ledger_post's own statements
-- were.
CREATE OR REPLACE FUNCTION greenledger_balances_post(
    p_txn bigint,
    k_account bigint[], k_asset bigint[], k_total bigint[], k_held bigint[], k_outgoing bigint[],
    k_negative boolean[],
    h_id bigint[], h_use bigint[],
    p_key int[], p_quantity bigint[],
    h_status text DEFAULT 'posted', h_at timestamptz DEFAULT now(),
    OUT ids bigint[], OUT totals bigint[], OUT helds bigint[], OUT negatives boolean[], OUT ended bigint[]
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_bad bigint;
    v_bad_hold bigint;
    v_created boolean := false;
    v_status text;
    v_remaining bigint;
BEGIN
    IF cardinality(k_account) > 32 THEN
        -- A large posting (a batch, a settlement) is planned for its arrays, as its statements were when
        -- ledger_post sent them itself; the SET clause above keeps this to the call.
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;
    -- 1. The rows locked in key order, read back in the keys' order, with the first key the posting would
    -- overdraw.
    LOOP
        -- Each array in the keys' order (ord): callers read them by position, so the order is stated, not
        -- left to the subquery's.
        SELECT array_agg(s.id ORDER BY s.ord), array_agg(s.total ORDER BY s.ord), array_agg(s.held ORDER BY s.ord),
               array_agg(s.allow_negative ORDER BY s.ord),
               min(s.ord) FILTER (WHERE NOT s.allow_negative AND (s.held + s.dh < 0 OR s.held + s.dh > s.total + s.dt))
          INTO ids, totals, helds, negatives, v_bad
          FROM (SELECT l.* FROM (
                    SELECT b.id, b.total, b.held, b.allow_negative, k.dt, k.dh, k.ord
                      FROM exchange_balance b
                      JOIN unnest(k_account, k_asset, k_total, k_held) WITH ORDINALITY AS k(account_id, asset_id, dt, dh, ord)
                        ON b.account_id = k.account_id AND b.asset_id = k.asset_id
                     ORDER BY b.account_id, b.asset_id
                       FOR UPDATE OF b) l
                 ORDER BY l.ord) s;
        EXIT WHEN cardinality(ids) = cardinality(k_account) OR v_created;
        INSERT INTO exchange_balance (account_id, asset_id, total, held, allow_negative)
        SELECT k.account_id, k.asset_id, 0, 0, k.negative
          FROM unnest(k_account, k_asset, k_negative) AS k(account_id, asset_id, negative)
         WHERE NOT EXISTS (SELECT 1 FROM exchange_balance b
                            WHERE b.account_id = k.account_id AND b.asset_id = k.asset_id)
         ORDER BY k.account_id, k.asset_id
            ON CONFLICT (account_id, asset_id) DO NOTHING;
        v_created := true;  -- then lock again: a row a concurrent posting created first is locked only then
    END LOOP;

    -- 2. The holds consumed, by id, after the balances; a hold refused before any balance.
    IF cardinality(h_id) > 0 THEN
        SELECT min(s.ord) FILTER (WHERE s.status <> 'active' OR s.remaining < s.used) INTO v_bad_hold
          FROM (SELECT h.status, h.remaining, u.used, u.ord
                  FROM exchange_hold h
                  JOIN unnest(h_id, h_use) WITH ORDINALITY AS u(id, used, ord) ON h.id = u.id
                 ORDER BY h.id
                   FOR UPDATE OF h) s;
        IF v_bad_hold IS NOT NULL THEN
            SELECT h.status, h.remaining INTO v_status, v_remaining FROM exchange_hold h WHERE h.id = h_id[v_bad_hold];
            RAISE EXCEPTION 'greenledger: hold ended or short' USING ERRCODE = 'GL004',
                DETAIL = json_build_object('hold', h_id[v_bad_hold], 'status', v_status, 'remaining', v_remaining,
                                           'requested', h_use[v_bad_hold])::text;
        END IF;
    END IF;

    -- 3. More than is available.
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: insufficient available' USING ERRCODE = 'GL001',
            DETAIL = json_build_object('account', k_account[v_bad], 'asset', k_asset[v_bad],
                                       'available', totals[v_bad] - helds[v_bad],
                                       'requested', k_outgoing[v_bad])::text;
    END IF;

    -- 4. The balances, then the postings in leg order, each with its key's balance as locked plus the legs
    -- up to it.
    UPDATE exchange_balance b SET total = b.total + k.dt, held = b.held + k.dh
      FROM unnest(ids, k_total, k_held) AS k(id, dt, dh)
     WHERE b.id = k.id AND (k.dt <> 0 OR k.dh <> 0);
    INSERT INTO exchange_posting (transaction_id, account_id, asset_id, quantity, balance_after)
    SELECT p_txn, k_account[p.key], k_asset[p.key], p.quantity,
           totals[p.key] + (sum(p.quantity) OVER (PARTITION BY p.key ORDER BY p.ord))::bigint
      FROM unnest(p_key, p_quantity) WITH ORDINALITY AS p(key, quantity, ord)
     ORDER BY p.ord;
    -- The holds consumed, locked and checked in step 2. Their status is in the active holds' index predicate,
    -- so a hold that ends is a new row version in every index of the table (no HOT update): one statement.
    ended := '{}';
    IF cardinality(h_id) > 0 THEN
        WITH w AS (
            UPDATE exchange_hold h
               SET remaining = h.remaining - u.used,
                   status = CASE WHEN h.remaining = u.used THEN h_status ELSE h.status END,
                   ended_at = CASE WHEN h.remaining = u.used THEN h_at ELSE h.ended_at END
              FROM unnest(h_id, h_use) AS u(id, used)
             WHERE h.id = u.id
            RETURNING h.id, h.remaining)
        SELECT coalesce(array_agg(w.id ORDER BY w.id) FILTER (WHERE w.remaining = 0), '{}') INTO ended FROM w;
    END IF;
END
$$;
