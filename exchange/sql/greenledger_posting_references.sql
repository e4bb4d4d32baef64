-- New postings name an existing journal entry, account and asset: checked once per INSERT statement over
-- its transition table (trigger exchange_posting_references, migration 0081), instead of three deferred
-- foreign-key checks per row at commit. A bad reference refuses the statement (SQLSTATE 23503,
-- foreign_key_violation, as the foreign key did).
CREATE OR REPLACE FUNCTION greenledger_posting_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    bad := greenledger_references_missing(
        ARRAY(SELECT DISTINCT n.transaction_id FROM new_rows n),
        ARRAY(SELECT DISTINCT n.account_id FROM new_rows n),
        ARRAY(SELECT DISTINCT n.asset_id FROM new_rows n)
    );
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'greenledger: a posting names % which does not exist', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
