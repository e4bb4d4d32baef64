-- No trade of a trading day that settlement has closed: a trade's trading day is on or after the latest
-- settlement batch's ``settled_before`` (every trade of an earlier day is settled, so settlement reads
-- only the days from there on: its cost follows the days not yet closed, not the trading history).
-- A statement-level trigger on exchange_trade (INSERT), one read of the latest batch per statement.
-- A late trade is refused, loudly, rather than left where settlement no longer looks.
CREATE OR REPLACE FUNCTION greenledger_trade_after_watermark() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    settled_before date;
    bad bigint;
BEGIN
    SELECT b.settled_before INTO settled_before FROM exchange_settlementbatch b
     WHERE b.settled_before IS NOT NULL ORDER BY b.id DESC LIMIT 1;
    IF settled_before IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT min(n.id) INTO bad FROM new_trades n WHERE n.trading_day < settled_before;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: trade % is of a trading day settlement has closed (every trade before % is settled)',
            bad, settled_before USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
