-- The first missing reference among a journal statement's rows, or NULL: the set-wise check that stands in
-- for the journal's per-row foreign keys (migration 0081).
--
-- Each distinct entry, account and asset the statement's rows name is looked up once. The accounts and
-- assets found are locked FOR KEY SHARE, as a foreign key's check locks them: a concurrent DELETE of one
-- waits for this transaction, then finds the rows that name it (greenledger_journal_referenced refuses
-- it); a DELETE that committed first leaves the row missing here. Journal entries are never deleted
-- (exchange_transaction_append_only), so they are only looked up.
--
-- A statement of a few rows (a transfer's) runs generic plans (plan_cache_mode): planning the three lookups
-- for each call's arrays cost more than running them. Longer arrays (a batch, a settlement) are planned for
-- what they hold.
CREATE OR REPLACE FUNCTION greenledger_references_missing(
    p_transactions bigint[], p_accounts bigint[], p_assets bigint[]
) RETURNS text
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    missing bigint;
    found_rows bigint;
BEGIN
    IF greatest(cardinality(p_transactions), cardinality(p_accounts), cardinality(p_assets)) > 32 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);  -- the SET clause keeps this to the call
    END IF;
    SELECT w.id INTO missing FROM unnest(p_transactions) AS w(id)
     WHERE NOT EXISTS (SELECT 1 FROM exchange_transaction t WHERE t.id = w.id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RETURN 'transaction ' || missing;
    END IF;
    PERFORM 1 FROM exchange_account a WHERE a.id = ANY(p_accounts) ORDER BY a.id FOR KEY SHARE;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows <> cardinality(p_accounts) THEN
        SELECT w.id INTO missing FROM unnest(p_accounts) AS w(id)
         WHERE NOT EXISTS (SELECT 1 FROM exchange_account a WHERE a.id = w.id) LIMIT 1;
        RETURN 'account ' || missing;
    END IF;
    PERFORM 1 FROM exchange_asset s WHERE s.id = ANY(p_assets) ORDER BY s.id FOR KEY SHARE;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows <> cardinality(p_assets) THEN
        SELECT w.id INTO missing FROM unnest(p_assets) AS w(id)
         WHERE NOT EXISTS (SELECT 1 FROM exchange_asset s WHERE s.id = w.id) LIMIT 1;
        RETURN 'asset ' || missing;
    END IF;
    RETURN NULL;
END
$$;
