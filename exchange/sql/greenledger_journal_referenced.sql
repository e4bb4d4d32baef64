-- An account or asset the journal names is never deleted: the statement-level AFTER DELETE trigger on
-- exchange_account and exchange_asset (migration 0081) refuses a DELETE of one that a posting or serial
-- movement names (SQLSTATE 23503, foreign_key_violation, as the journal's foreign keys did). With
-- greenledger_references_missing's FOR KEY SHARE locks, a delete racing a posting waits for it.
CREATE OR REPLACE FUNCTION greenledger_journal_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
BEGIN
    IF TG_TABLE_NAME = 'exchange_account' THEN
        SELECT o.id INTO named FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM exchange_posting p WHERE p.account_id = o.id)
            OR EXISTS (SELECT 1 FROM exchange_serialmovement m WHERE m.source_id = o.id OR m.destination_id = o.id)
         LIMIT 1;
    ELSE
        SELECT o.id INTO named FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM exchange_posting p WHERE p.asset_id = o.id)
            OR EXISTS (SELECT 1 FROM exchange_serialmovement m WHERE m.asset_id = o.id)
         LIMIT 1;
    END IF;
    IF named IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: % % is named by the journal and is never deleted', TG_TABLE_NAME, named
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
