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
-- Each table's columns of one type come as one two-dimensional array, a row per row in the caller's order (the
-- order of its columns is the INSERT's or the SET's here: exchange.services.order_batch's HOLD_COLUMNS and
-- the others name them), so the call has a few dozen parameters whatever the tables' widths. Plain statements
-- over the arrays' rows, planned once per session (generic plans: a batch holds at most a few hundred rows, and
-- a custom plan for each call's arrays would cost more than the batch's writes).
-- The serial blocks of held units are moved by the caller after this call (the blocks name their hold).
CREATE OR REPLACE FUNCTION greenledger_order_batch(
    h_int bigint[], h_text text[], h_time timestamptz[],
    b_int bigint[],
    o_int bigint[], o_text text[], o_time timestamptz[], o_date date[], o_bool boolean[],
    t_int bigint[], t_text text[], t_date date[], t_time timestamptz[],
    f_int bigint[], f_text text[], f_time timestamptz[],
    a_at timestamptz[], a_user bigint[], a_participant bigint[], a_label text[], a_action text[],
    a_object_type text[], a_object_id text[], a_payload text[], a_body text[], a_lock bigint
) RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO exchange_hold (id, quantity, remaining, account_id, asset_id, kind, reference, status, created_at,
                               ended_at)
    SELECT h_int[i][1], h_int[i][2], h_int[i][3], h_int[i][4], h_int[i][5], h_text[i][1], h_text[i][2],
           h_text[i][3], h_time[i][1], h_time[i][2]
      FROM generate_subscripts(h_int, 1) AS i
     ORDER BY i;

    UPDATE exchange_balance b SET total = b_int[i][2], held = b_int[i][3]
      FROM generate_subscripts(b_int, 1) AS i
     WHERE b.id = b_int[i][1];

    INSERT INTO exchange_order (id, price_fen, quantity, filled, filled_turnover_fen, fee_fen, account_id, asset_id,
                                hold_id, participant_id, counterparty_id, auction_id, side, mode, status, end_reason,
                                client_order_id, trading_mode, created_at, ended_at, trading_day, partial_allowed)
    SELECT o_int[i][1], o_int[i][2], o_int[i][3], o_int[i][4], o_int[i][5], o_int[i][6], o_int[i][7], o_int[i][8],
           o_int[i][9], o_int[i][10], o_int[i][11], o_int[i][12], o_text[i][1], o_text[i][2], o_text[i][3],
           o_text[i][4], o_text[i][5], o_text[i][6], o_time[i][1], o_time[i][2], o_date[i][1], o_bool[i][1]
      FROM generate_subscripts(o_int, 1) AS i
     ORDER BY i;

    IF cardinality(t_int) > 0 THEN
        INSERT INTO exchange_trade (id, price_fen, quantity, turnover_fen, buyer_fee_fen, seller_fee_fen, asset_id,
                                    buy_order_id, sell_order_id, mode, aggressor, trading_mode, trading_day,
                                    created_at)
        SELECT t_int[i][1], t_int[i][2], t_int[i][3], t_int[i][4], t_int[i][5], t_int[i][6], t_int[i][7],
               t_int[i][8], t_int[i][9], t_text[i][1], t_text[i][2], t_text[i][3], t_date[i][1], t_time[i][1]
          FROM generate_subscripts(t_int, 1) AS i
         ORDER BY i;
    END IF;

    UPDATE exchange_order o
       SET filled = f_int[i][2], filled_turnover_fen = f_int[i][3], fee_fen = f_int[i][4], status = f_text[i][1],
           end_reason = f_text[i][2], ended_at = f_time[i][1]
      FROM generate_subscripts(f_int, 1) AS i
     WHERE o.id = f_int[i][1];

    PERFORM greenledger_audit_records(a_at, a_user, a_participant, a_label, a_action, a_object_type, a_object_id,
                                      a_payload, a_body, a_lock);
END
$$;
