-- The hash of an audit event: sha256 of "<seq>|<body>" (UTF-8), in lowercase hex.
--
-- ``body`` is the event's canonical JSON (exchange.audit_proof.event_body). Every event written in the
-- database is hashed by this function: audit_record's INSERT and greenledger_transfer call it. The
-- stdlib-only proof checker restates the formula (exchange.audit_proof.event_hash);
-- tests/exchange/test_event_hash.py holds the two equal.
CREATE OR REPLACE FUNCTION greenledger_event_hash(p_seq bigint, p_body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(p_seq::text || '|' || p_body, 'UTF8')), 'hex')
$$;
