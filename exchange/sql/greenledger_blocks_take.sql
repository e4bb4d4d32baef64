-- Take the lowest available serials of accounts: the one place the arithmetic of taking lowest serials
-- first lives (docs/architecture.md, The posting path).
--
-- For each (p_account[i], p_asset[i], p_qty[i]), one entry per (account, asset), it reads the lowest
-- available blocks that together cover the quantity (greenledger_lowest_blocks: only the blocks it takes),
-- deletes the blocks taken whole and shrinks the last one from below, and returns the ranges taken, per
-- account and asset in serial order. Both posting paths call it: greenledger_transfer for its one leg, and
-- ledger_post (exchange/services/serial_book.py) for every leg taking an account's lowest serials that no
-- leg of the same posting gives units to. The ranges then go to their destinations through
-- greenledger_blocks_put.
--
-- With fewer units in blocks than asked, it takes every available block and returns less than asked: the
-- caller, which checks the balance under its lock, refuses the movement (and its transaction goes) or,
-- with the balance enough, treats the shortfall as corruption. Callers lock the accounts' balance rows in
-- the assets first: that lock guards their blocks.
CREATE OR REPLACE FUNCTION greenledger_blocks_take(p_account bigint[], p_asset bigint[], p_qty bigint[])
RETURNS TABLE (account_id bigint, asset_id bigint, first bigint, last bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    need bigint;
    take bigint;
    blk record;
BEGIN
    -- Statement by statement, each by index (the id, or the walk of greenledger_lowest_blocks), their plans
    -- kept for the session and generic (plan_cache_mode: each names one account's rows, and a plan made for
    -- its values cost more than the statement): a transfer's one or two blocks cost what they did inline.
    FOR i IN 1 .. coalesce(array_length(p_account, 1), 0) LOOP
        need := p_qty[i];
        FOR blk IN SELECT b.id, b.first, b.last FROM greenledger_lowest_blocks(p_account[i], p_asset[i], need) b LOOP
            EXIT WHEN need = 0;
            take := LEAST(need, blk.last - blk.first + 1);
            IF take = blk.last - blk.first + 1 THEN
                DELETE FROM exchange_serialblock s WHERE s.id = blk.id;
            ELSE
                UPDATE exchange_serialblock s SET first = blk.first + take WHERE s.id = blk.id;
            END IF;
            account_id := p_account[i];
            asset_id := p_asset[i];
            first := blk.first;
            last := blk.first + take - 1;
            RETURN NEXT;
            need := need - take;
        END LOOP;
    END LOOP;
END
$$;
