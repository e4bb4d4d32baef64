-- A rulebook version in effect (effective_from on or before today, China Standard Time) is never edited or
-- deleted, nor are its trading modes: a change of rules is a new version (exchange.services.markets).
CREATE OR REPLACE FUNCTION greenledger_rulebook_frozen() RETURNS trigger AS $$
DECLARE
    book_id bigint;
    starts date;
BEGIN
    IF TG_TABLE_NAME = 'exchange_rulebook' THEN
        book_id := OLD.id;
    ELSE
        book_id := OLD.rulebook_id;
    END IF;
    SELECT effective_from INTO starts FROM exchange_rulebook WHERE id = book_id;
    IF starts IS NOT NULL AND starts <= (now() AT TIME ZONE 'Asia/Shanghai')::date THEN
        RAISE EXCEPTION 'rulebook % is in effect since %: publish a new version instead', book_id, starts
            USING ERRCODE = 'GL002';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS greenledger_rulebook_frozen ON exchange_rulebook;
CREATE TRIGGER greenledger_rulebook_frozen BEFORE UPDATE OR DELETE ON exchange_rulebook
    FOR EACH ROW EXECUTE FUNCTION greenledger_rulebook_frozen();
DROP TRIGGER IF EXISTS greenledger_rulebook_mode_frozen ON exchange_rulebookmode;
CREATE TRIGGER greenledger_rulebook_mode_frozen BEFORE UPDATE OR DELETE ON exchange_rulebookmode
    FOR EACH ROW EXECUTE FUNCTION greenledger_rulebook_frozen();
