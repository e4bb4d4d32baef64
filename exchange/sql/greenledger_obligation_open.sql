-- Emission versions are added to open obligations, and a conservatively determined one also to an obligation
-- assessed unverified; surrenders to open ones and, after the deadline, to short ones (a late surrender
-- cures the shortfall).
CREATE OR REPLACE FUNCTION greenledger_obligation_open() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    accepted text[];
BEGIN
    IF TG_TABLE_NAME = 'exchange_surrender' THEN
        accepted := ARRAY['open', 'short'];
    ELSIF (to_jsonb(NEW) ->> 'conservative')::boolean THEN
        accepted := ARRAY['open', 'unverified'];
    ELSE
        accepted := ARRAY['open'];
    END IF;
    IF NOT EXISTS (SELECT 1 FROM exchange_obligation WHERE id = NEW.obligation_id AND status = ANY(accepted)) THEN
        RAISE EXCEPTION 'greenledger: obligation % is assessed; nothing more is recorded for it', NEW.obligation_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
