-- Open a journal entry: the one INSERT every entry goes through (journal_open, greenledger_transfer).
--
-- Returns the new entry's id, or NULL when an entry already holds this idempotency key in this scope
-- (the caller replays it: exchange.services.ledger.journal_replay). Two callers racing with one key:
-- the second waits on the unique index until the first commits, then gets NULL. PL/pgSQL, so that its
-- plan is kept per connection (a LANGUAGE sql function is planned at every call).
CREATE OR REPLACE FUNCTION greenledger_journal_open(
    p_kind text, p_user bigint, p_participant bigint, p_label text, p_scope text, p_key text, p_hash text,
    p_memo text, p_metadata jsonb, p_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO exchange_transaction (kind, actor_user_id, actor_participant_id, actor_label, idempotency_scope,
                                      idempotency_key, request_hash, memo, metadata, created_at)
    VALUES (p_kind, p_user, p_participant, p_label, p_scope, p_key, p_hash, p_memo, p_metadata, p_at)
    ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
