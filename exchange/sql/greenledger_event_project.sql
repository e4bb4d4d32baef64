-- Project one audit event into participant events, in the audit event's own transaction (an outbox).
--
-- The AFTER INSERT trigger on exchange_auditevent: every audit event, however written (audit_record,
-- greenledger_transfer), passes here. An action with no route (exchange_eventroute, written from
-- exchange.events.ROUTES) costs one index probe and produces nothing. Otherwise the concerned participants'
-- events (greenledger_event_concerned) are numbered per participant: the participants' counter rows are
-- locked in participant id order and advanced by one statement (the last step of exchange.locks' order,
-- after the audit writers' lock), so a participant's numbers commit in order with no gap. Each concerned
-- participant is then notified (NOTIFY greenledger_events, payload its id), delivered at commit; the
-- event stream wakes on it and reads the table, which is the truth.
CREATE OR REPLACE FUNCTION greenledger_event_project() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_payload jsonb;
    v_participants bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM exchange_eventroute WHERE action = NEW.action) THEN
        RETURN NULL;
    END IF;
    v_payload := NEW.payload::jsonb;
    WITH found AS MATERIALIZED (
        SELECT c.participant_id, r.event_type, c.payload, r.id AS route, c.ord
          FROM exchange_eventroute r
         CROSS JOIN LATERAL greenledger_event_concerned(r.resolver, r.args, NEW.object_id, NEW.created_at,
                                                        v_payload) AS c
         WHERE r.action = NEW.action
    ), numbered AS (
        SELECT f.*, row_number() OVER (PARTITION BY f.participant_id ORDER BY f.ord, f.route) AS k,
               count(*) OVER (PARTITION BY f.participant_id) AS n
          FROM found f
    ), counters AS (
        INSERT INTO exchange_participanteventcounter AS c (participant_id, last_number)
        SELECT participant_id, max(n) FROM numbered GROUP BY participant_id ORDER BY participant_id
        ON CONFLICT (participant_id) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
        RETURNING c.participant_id, c.last_number
    ), written AS (
        INSERT INTO exchange_participantevent (participant_id, number, type, payload, audit_seq, created_at)
        SELECT nb.participant_id, ct.last_number - nb.n + nb.k, nb.event_type, nb.payload, NEW.seq, NEW.created_at
          FROM numbered nb JOIN counters ct ON ct.participant_id = nb.participant_id
        RETURNING participant_id
    )
    SELECT array_agg(DISTINCT participant_id) INTO v_participants FROM written;
    IF v_participants IS NOT NULL THEN
        PERFORM pg_notify('greenledger_events', x::text) FROM unnest(v_participants) AS x;
    END IF;
    RETURN NULL;
END
$$;
