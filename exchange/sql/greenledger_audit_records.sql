-- Write many audit events in one statement (a batch of the matching engine): the same events
-- greenledger_audit_record writes one at a time, in the order given.
--
-- Takes the audit writers' shared advisory lock (p_lock, exchange.locks.AUDIT_LOCK_KEY) once, draws one
-- sequence number per event and gives them to the events in ascending order (the i-th event the i-th
-- smallest), and hashes each with greenledger_event_hash of its number and its canonical body, as
-- greenledger_audit_record does: verification can't tell the two apart. Returns the events' numbers and
-- hashes in the order given.
CREATE OR REPLACE FUNCTION greenledger_audit_records(
    p_at timestamptz[], p_user bigint[], p_participant bigint[], p_label text[], p_action text[],
    p_object_type text[], p_object_id text[], p_payload text[], p_body text[], p_lock bigint
) RETURNS TABLE (seq bigint, hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seqs bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    v_seqs := ARRAY(SELECT s FROM (SELECT nextval('exchange_auditevent_seq_seq'::regclass) AS s
                                     FROM generate_series(1, cardinality(p_body))) n ORDER BY s);
    RETURN QUERY
    INSERT INTO exchange_auditevent AS e (seq, created_at, actor_user_id, actor_participant_id, actor_label, action,
                                          object_type, object_id, payload, hash)
    SELECT v_seqs[i], p_at[i], p_user[i], p_participant[i], p_label[i], p_action[i], p_object_type[i],
           p_object_id[i], p_payload[i], greenledger_event_hash(v_seqs[i], p_body[i])
      FROM generate_series(1, cardinality(p_body)) AS i
     ORDER BY i
    RETURNING e.seq, e.hash::text;
END
$$;
