-- One transfer of a group committed together (exchange.group_commit): greenledger_transfer with the same
-- parameters, in a subtransaction of its own (a BEGIN ... EXCEPTION block), so that a transfer refused for its
-- own reasons rolls back only what it wrote, its Idempotency-Key's row and lock included, and the group's
-- other transfers go on in the same transaction.
--
-- It answers greenledger_transfer's row, and for a refusal status 'refused' with the error's SQLSTATE and
-- detail (GL001 carries the source's available amount as JSON, as greenledger_transfer raises it); either
-- with the id of the (top-level) transaction that holds it, which the members of one group share. Any
-- other error (a deadlock, a trigger's refusal) is answered the same way: the service runs that transfer
-- again as a statement of its own, which raises it as it always did.
CREATE OR REPLACE FUNCTION greenledger_transfer_try(
    p_user bigint, p_participant bigint, p_label text, p_scope text, p_hash text, p_memo text,
    p_at timestamptz, p_source bigint, p_dest bigint, p_asset bigint, p_qty bigint,
    p_action text, p_body1 text, p_body2 text, p_body3 text, p_pay1 text, p_pay2 text, p_audit_lock bigint,
    p_trust_participant bigint, p_trust_at timestamptz,
    p_claim_key text, p_claim_method text, p_claim_path text, p_claim_hash text, p_claim_lock_class int,
    p_answer1 text, p_answer2 text, p_cross boolean
) RETURNS TABLE (status text, txn bigint, available bigint, source_after bigint, dest_after bigint, ranges bigint[],
                 sqlstate text, detail text, xact bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_state text;
    v_detail text;
BEGIN
    BEGIN
        RETURN QUERY
        SELECT t.status, t.txn, t.available, t.source_after, t.dest_after, t.ranges, NULL::text, NULL::text,
               txid_current()
          FROM greenledger_transfer(p_user, p_participant, p_label, p_scope, p_hash, p_memo, p_at, p_source, p_dest,
                                    p_asset, p_qty, p_action, p_body1, p_body2, p_body3, p_pay1, p_pay2, p_audit_lock,
                                    p_trust_participant, p_trust_at, p_claim_key, p_claim_method, p_claim_path,
                                    p_claim_hash, p_claim_lock_class, p_answer1, p_answer2, p_cross) t;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_detail = PG_EXCEPTION_DETAIL;
        RETURN QUERY SELECT 'refused'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint[],
                            v_state, v_detail, txid_current();
    END;
END
$$;
