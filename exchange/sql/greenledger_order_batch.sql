-- Write what one batch of the matching engine decided, in one statement (exchange.services.order_batch): the
-- orders' holds, the balances they reserve from, the orders, their trades, the fills of resting orders and one
-- audit event per order. The caller decided everything (ids drawn up front, balances locked and computed from
-- their locked rows, the audit events' canonical bodies made); this writes it, in the order the statements it
-- replaces ran, so that every constraint and deferred foreign key applies as before:
--
-- 1. the holds (h_*), each as the caller made it (active, its remaining its quantity);
-- 2. the balances (b_*): the totals and helds as they stand after the batch's holds, by row id (the rows are
--    locked already, by the batch's reads);
-- 3. the orders (o_*), each as the batch left it (later orders of the batch may have filled it);
-- 4. the trades (t_*), in id order; the trade watermark's statement trigger sees them in one statement;
-- 5. the resting orders the batch filled (f_*): their fill columns as they now stand;
-- 6. the audit events (a_*) through greenledger_audit_records: the same lock, numbers and hashes.
--
-- Plain statements over unnest() of the arrays, planned once per session (generic plans: a batch holds at
-- most a few hundred rows, and a custom plan for each call's arrays would cost more than the batch's writes).
-- The serial blocks of held units are moved by the caller after this call (the blocks name their hold).
CREATE OR REPLACE FUNCTION greenledger_order_batch(
    h_id bigint[], h_kind text[], h_reference text[], h_quantity bigint[], h_remaining bigint[], h_status text[],
    h_created_at timestamptz[], h_ended_at timestamptz[], h_account bigint[], h_asset bigint[],
    b_id bigint[], b_total bigint[], b_held bigint[],
    o_id bigint[], o_side text[], o_mode text[], o_price_fen bigint[], o_quantity bigint[], o_filled bigint[],
    o_filled_turnover_fen bigint[], o_fee_fen bigint[], o_status text[], o_end_reason text[],
    o_client_order_id text[], o_trading_day date[], o_created_at timestamptz[], o_ended_at timestamptz[],
    o_account bigint[], o_asset bigint[], o_hold bigint[], o_participant bigint[], o_counterparty bigint[],
    o_partial_allowed boolean[], o_trading_mode text[], o_auction bigint[],
    t_id bigint[], t_mode text[], t_aggressor text[], t_price_fen bigint[], t_quantity bigint[],
    t_turnover_fen bigint[], t_buyer_fee_fen bigint[], t_seller_fee_fen bigint[], t_trading_day date[],
    t_created_at timestamptz[], t_asset bigint[], t_buy_order bigint[], t_sell_order bigint[], t_trading_mode text[],
    f_id bigint[], f_filled bigint[], f_filled_turnover_fen bigint[], f_fee_fen bigint[], f_status text[],
    f_end_reason text[], f_ended_at timestamptz[],
    a_at timestamptz[], a_user bigint[], a_participant bigint[], a_label text[], a_action text[],
    a_object_type text[], a_object_id text[], a_payload text[], a_body text[], a_lock bigint
) RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO exchange_hold (id, kind, reference, quantity, remaining, status, created_at, ended_at, account_id,
                               asset_id)
    SELECT * FROM unnest(h_id, h_kind, h_reference, h_quantity, h_remaining, h_status, h_created_at, h_ended_at,
                         h_account, h_asset);

    UPDATE exchange_balance b SET total = v.total, held = v.held
      FROM unnest(b_id, b_total, b_held) AS v(id, total, held)
     WHERE b.id = v.id;

    INSERT INTO exchange_order (id, side, mode, price_fen, quantity, filled, filled_turnover_fen, fee_fen, status,
                                end_reason, client_order_id, trading_day, created_at, ended_at, account_id, asset_id,
                                hold_id, participant_id, counterparty_id, partial_allowed, trading_mode, auction_id)
    SELECT * FROM unnest(o_id, o_side, o_mode, o_price_fen, o_quantity, o_filled, o_filled_turnover_fen, o_fee_fen,
                         o_status, o_end_reason, o_client_order_id, o_trading_day, o_created_at, o_ended_at,
                         o_account, o_asset, o_hold, o_participant, o_counterparty, o_partial_allowed,
                         o_trading_mode, o_auction);

    IF cardinality(t_id) > 0 THEN
        INSERT INTO exchange_trade (id, mode, aggressor, price_fen, quantity, turnover_fen, buyer_fee_fen,
                                    seller_fee_fen, trading_day, created_at, asset_id, buy_order_id, sell_order_id,
                                    trading_mode)
        SELECT * FROM unnest(t_id, t_mode, t_aggressor, t_price_fen, t_quantity, t_turnover_fen, t_buyer_fee_fen,
                             t_seller_fee_fen, t_trading_day, t_created_at, t_asset, t_buy_order, t_sell_order,
                             t_trading_mode) AS t(id)
         ORDER BY t.id;
    END IF;

    UPDATE exchange_order o
       SET filled = v.filled, filled_turnover_fen = v.filled_turnover_fen, fee_fen = v.fee_fen, status = v.status,
           end_reason = v.end_reason, ended_at = v.ended_at
      FROM unnest(f_id, f_filled, f_filled_turnover_fen, f_fee_fen, f_status, f_end_reason, f_ended_at)
           AS v(id, filled, filled_turnover_fen, fee_fen, status, end_reason, ended_at)
     WHERE o.id = v.id;

    PERFORM greenledger_audit_records(a_at, a_user, a_participant, a_label, a_action, a_object_type, a_object_id,
                                      a_payload, a_body, a_lock);
END
$$;
