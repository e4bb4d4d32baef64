-- The lowest available serial blocks of an account in an asset that together cover ``p_qty`` units,
-- in serial order, and no more.
--
-- It walks the (account, asset, state, first) index one block at a time and stops as soon as the blocks
-- read cover the quantity, so its cost follows the blocks taken, not the blocks the account holds (a
-- source of 1,000 blocks costs what a fresh one does). With fewer units than ``p_qty`` it returns every
-- available block; the caller, which checked the balance under its lock, treats that as corruption.
-- Callers lock the account's balance row in the asset first: that lock guards its blocks.
CREATE OR REPLACE FUNCTION greenledger_lowest_blocks(p_account bigint, p_asset bigint, p_qty bigint)
RETURNS TABLE (id bigint, first bigint, last bigint)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE walk (id, first, last, upto) AS (
        (SELECT b.id, b.first, b.last, b.last - b.first + 1
           FROM exchange_serialblock b
          WHERE b.account_id = p_account AND b.asset_id = p_asset AND b.state = 'available'
          ORDER BY b.first
          LIMIT 1)
        UNION ALL
        SELECT n.id, n.first, n.last, w.upto + n.last - n.first + 1
          FROM walk w
          CROSS JOIN LATERAL (
                SELECT b.id, b.first, b.last
                  FROM exchange_serialblock b
                 WHERE b.account_id = p_account AND b.asset_id = p_asset AND b.state = 'available'
                   AND b.first > w.first
                 ORDER BY b.first
                 LIMIT 1) n
         WHERE w.upto < p_qty
    )
    SELECT walk.id, walk.first, walk.last FROM walk
$$;
