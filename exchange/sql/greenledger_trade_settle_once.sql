-- A trade is settled once and is otherwise immutable: the statement-level trigger on exchange_trade
-- (migration 0005) compares the transition tables. min() plans as a hash join (a LIMIT led to a nested loop).
CREATE OR REPLACE FUNCTION greenledger_trade_settle_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT min(o.id) INTO bad FROM old_trades o JOIN new_trades n ON n.id = o.id
     WHERE o.settlement_batch_id IS NOT NULL OR n.settlement_batch_id IS NULL
        OR (o.asset_id, o.mode, o.buy_order_id, o.sell_order_id, o.aggressor, o.price_fen, o.quantity, o.turnover_fen, o.buyer_fee_fen, o.seller_fee_fen, o.trading_day, o.created_at) IS DISTINCT FROM (n.asset_id, n.mode, n.buy_order_id, n.sell_order_id, n.aggressor, n.price_fen, n.quantity, n.turnover_fen, n.buyer_fee_fen, n.seller_fee_fen, n.trading_day, n.created_at);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: trade % can only be settled once and is otherwise immutable', bad
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END
$$;
