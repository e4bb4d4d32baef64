-- Write one audit event: the one INSERT every event goes through (audit_record, greenledger_transfer).
--
-- Takes the audit writers' shared advisory lock (p_lock, exchange.locks.AUDIT_LOCK_KEY) before drawing
-- the sequence number and holds it to commit, so that the sealer, taking it exclusively, learns a
-- horizon below which every event has committed. The hash is greenledger_event_hash of the sequence
-- number and ``p_body``, the event's canonical body (exchange.audit_proof.event_body). PL/pgSQL, so that
-- its statements' plans are kept per connection (a LANGUAGE sql function is planned at every call).
CREATE OR REPLACE FUNCTION greenledger_audit_record(
    p_at timestamptz, p_user bigint, p_participant bigint, p_label text, p_action text, p_object_type text,
    p_object_id text, p_payload text, p_body text, p_lock bigint
) RETURNS TABLE (seq bigint, hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seq bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    v_seq := nextval('exchange_auditevent_seq_seq'::regclass);
    RETURN QUERY
    INSERT INTO exchange_auditevent AS e (seq, created_at, actor_user_id, actor_participant_id, actor_label, action,
                                          object_type, object_id, payload, hash)
    VALUES (v_seq, p_at, p_user, p_participant, p_label, p_action, p_object_type, p_object_id, p_payload,
            greenledger_event_hash(v_seq, p_body))
    RETURNING e.seq, e.hash::text;
END
$$;
