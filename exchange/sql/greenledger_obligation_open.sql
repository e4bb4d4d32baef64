-- Emission versions are added to open obligations only; surrenders to open ones and, after the deadline,
-- to short ones (a late surrender cures the shortfall).
CREATE OR REPLACE FUNCTION greenledger_obligation_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM exchange_obligation
        WHERE id = NEW.obligation_id
          AND (status = 'open' OR (TG_TABLE_NAME = 'exchange_surrender' AND status = 'short'))
    ) THEN
        RAISE EXCEPTION 'greenledger: obligation % is assessed; nothing more is recorded for it', NEW.obligation_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
