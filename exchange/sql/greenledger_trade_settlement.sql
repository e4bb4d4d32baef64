-- A trade settles once: its row in exchange_tradesettlement (primary key: the trade) is written once by
-- settlement and never changed (exchange_tradesettlement_append_only). This statement-level trigger checks,
-- in one join per statement, that every new row names an existing trade and settlement batch: what deferred
-- foreign keys would check one row at a time at commit (200,000 checks for a batch of 100,000 trades).
-- Trades and batches are never deleted (their own triggers), so a reference checked here stays valid.
CREATE OR REPLACE FUNCTION greenledger_trade_settlement_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT min(n.trade_id) INTO bad FROM new_rows n LEFT JOIN exchange_trade t ON t.id = n.trade_id
     WHERE t.id IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: settlement of trade %, which does not exist', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT min(n.batch_id) INTO bad FROM new_rows n LEFT JOIN exchange_settlementbatch b ON b.id = n.batch_id
     WHERE b.id IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: settlement batch % does not exist', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
