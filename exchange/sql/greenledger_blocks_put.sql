-- Put serial ranges into the block table, each merged with the blocks next to it of the same holding
-- (account, state and hold) and with the other ranges put: the one place blocks are written after a move.
--
-- Both posting paths call it: greenledger_transfer for the ranges a transfer moved, and ledger_post (its
-- serial book, exchange/services/ledger.py) for every piece a posting made: moved ranges and what is left
-- of the blocks it cut. The caller has deleted the blocks it took, holds the balance locks that guard the
-- accounts' blocks, and puts ranges that overlap no block. The neighbours are found by index, two per
-- range at most ((asset, last) below it and (asset, first) above it); runs of adjacent blocks of one
-- holding become one block.
--
-- A few ranges (a transfer's one or two, a small posting's) are put one at a time: the block below of the
-- same holding grows to take the range (and the block above, which is then deleted), else the block above
-- grows down to it, else the range is a new block. A range put joins the ranges put before it the same
-- way, so the order does not matter, and a block that grows keeps its id and its account, asset and hold,
-- so none of their checks runs again. Their plans are generic (plan_cache_mode): planning each call's
-- statements cost more than running them.
--
-- Many ranges (a batch, a settlement) are put set-wise, planned for their arrays: gaps and islands over the
-- ranges and their neighbours, per asset in serial order. The merged neighbours are deleted before the
-- merged blocks are inserted (the insert reads the delete's count), so the exclusion constraint never sees
-- the two overlap.
CREATE OR REPLACE FUNCTION greenledger_blocks_put(
    p_asset bigint[], p_first bigint[], p_last bigint[], p_account bigint[], p_state text[], p_hold bigint[]
) RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_below bigint;
    v_above bigint;
    v_above_last bigint;
BEGIN
    IF cardinality(p_first) <= 8 THEN
        FOR i IN 1 .. coalesce(cardinality(p_first), 0) LOOP
            SELECT b.id INTO v_below FROM exchange_serialblock b
             WHERE b.asset_id = p_asset[i] AND b.last = p_first[i] - 1 AND b.account_id = p_account[i]
               AND b.state = p_state[i] AND b.hold_id IS NOT DISTINCT FROM p_hold[i];
            SELECT b.id, b.last INTO v_above, v_above_last FROM exchange_serialblock b
             WHERE b.asset_id = p_asset[i] AND b.first = p_last[i] + 1 AND b.account_id = p_account[i]
               AND b.state = p_state[i] AND b.hold_id IS NOT DISTINCT FROM p_hold[i];
            IF v_below IS NOT NULL THEN
                IF v_above IS NOT NULL THEN
                    DELETE FROM exchange_serialblock b WHERE b.id = v_above;
                END IF;
                UPDATE exchange_serialblock b SET last = coalesce(v_above_last, p_last[i]) WHERE b.id = v_below;
            ELSIF v_above IS NOT NULL THEN
                UPDATE exchange_serialblock b SET first = p_first[i] WHERE b.id = v_above;
            ELSE
                INSERT INTO exchange_serialblock (asset_id, first, last, account_id, state, hold_id)
                VALUES (p_asset[i], p_first[i], p_last[i], p_account[i], p_state[i], p_hold[i]);
            END IF;
        END LOOP;
        RETURN;
    END IF;
    PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);  -- the SET clause keeps this to the call
    WITH piece AS (
        SELECT * FROM unnest(p_asset, p_first, p_last, p_account, p_state, p_hold)
                   AS u(asset_id, first, last, account_id, state, hold_id)
    ), neighbour AS (
        SELECT b.id, b.asset_id, b.first, b.last, b.account_id, b.state, b.hold_id
          FROM piece p JOIN exchange_serialblock b
            ON b.asset_id = p.asset_id AND b.last = p.first - 1
         WHERE b.account_id = p.account_id AND b.state = p.state AND b.hold_id IS NOT DISTINCT FROM p.hold_id
        UNION
        SELECT b.id, b.asset_id, b.first, b.last, b.account_id, b.state, b.hold_id
          FROM piece p JOIN exchange_serialblock b
            ON b.asset_id = p.asset_id AND b.first = p.last + 1
         WHERE b.account_id = p.account_id AND b.state = p.state AND b.hold_id IS NOT DISTINCT FROM p.hold_id
    ), every_block AS (
        SELECT NULL::bigint AS id, * FROM piece
        UNION ALL
        SELECT * FROM neighbour
    ), marked AS (
        SELECT e.*,
               CASE WHEN lag(e.last) OVER w = e.first - 1 AND lag(e.account_id) OVER w = e.account_id
                         AND lag(e.state) OVER w = e.state AND lag(e.hold_id) OVER w IS NOT DISTINCT FROM e.hold_id
                    THEN 0 ELSE 1 END AS starts
          FROM every_block e
        WINDOW w AS (PARTITION BY e.asset_id ORDER BY e.first)
    ), numbered AS (
        SELECT m.*, sum(m.starts) OVER (PARTITION BY m.asset_id ORDER BY m.first) AS run FROM marked m
    ), merged AS (
        SELECT n.asset_id, min(n.first) AS first, max(n.last) AS last, min(n.account_id) AS account_id,
               min(n.state) AS state, min(n.hold_id) AS hold_id
          FROM numbered n GROUP BY n.asset_id, n.run
    ), gone AS (
        DELETE FROM exchange_serialblock b USING neighbour n WHERE b.id = n.id RETURNING b.id
    )
    INSERT INTO exchange_serialblock (asset_id, first, last, account_id, state, hold_id)
    SELECT m.asset_id, m.first, m.last, m.account_id, m.state, m.hold_id
      FROM merged m
     WHERE (SELECT count(*) FROM gone) >= 0;
END
$$;
