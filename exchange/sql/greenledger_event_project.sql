-- Project the audit events of one INSERT into participant events, in their own transaction (an outbox).
--
-- The AFTER INSERT ... FOR EACH STATEMENT trigger on exchange_auditevent, with the statement's new rows as the
-- transition table new_events: every audit event, however written (audit_record and greenledger_transfer one
-- at a time, greenledger_audit_records a matching engine's batch in one INSERT), passes here once per
-- statement. The routes of all the statement's events (exchange_eventroute, written from
-- exchange.events.ROUTES) are resolved by one query (greenledger_event_concerned for each event and route); an
-- action with no route costs one index probe and produces nothing. The concerned participants' events are then
-- numbered per participant, in audit-event order (seq, then the resolver's order, then the route's): each
-- concerned participant's counter row is locked and advanced once for the whole statement, by the number of
-- its events, in participant id order (the last step of exchange.locks' order, after the audit writers' lock),
-- so a participant's numbers commit in order with no gap. All the events are written by one INSERT, and each
-- concerned participant is notified once (NOTIFY greenledger_events, payload its id), delivered at commit; the
-- event stream wakes on it and reads the table, which is the truth.
--
-- A statement whose events come to a few participant events (a transfer: one or two; a small batch of the
-- engine) is numbered here one counter statement per participant, with generic plans (plan_cache_mode), whose
-- planning per call would cost more than the statements: a single event costs what the row trigger this
-- replaces cost (docs/performance.md). One that comes to more (a larger batch of the engine, a settlement
-- batch: every buyer and seller) is numbered and written by one set-wise statement instead, planned for its
-- arrays.
CREATE OR REPLACE FUNCTION greenledger_event_project() RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_pid bigint[];
    v_type text[];
    v_pay jsonb[];
    v_num bigint[];
    v_n int;
    v_last bigint;
    v_count int;
    v_k bigint;
    v_seq bigint[];
    v_at timestamptz[];
    p bigint;
    i int;
BEGIN
    -- Every participant event of the statement, in audit-event order: the event's number, then the resolver's
    -- order, then the route's.
    SELECT array_agg(c.participant_id ORDER BY e.seq, c.ord, r.id),
           array_agg(r.event_type ORDER BY e.seq, c.ord, r.id),
           array_agg(c.payload ORDER BY e.seq, c.ord, r.id),
           array_agg(e.seq ORDER BY e.seq, c.ord, r.id),
           array_agg(e.created_at ORDER BY e.seq, c.ord, r.id)
      INTO v_pid, v_type, v_pay, v_seq, v_at
      FROM new_events e
      JOIN exchange_eventroute r ON r.action = e.action
     CROSS JOIN LATERAL greenledger_event_concerned(r.resolver, r.args, e.object_id, e.created_at,
                                                    e.payload::jsonb) AS c;
    IF v_pid IS NULL THEN
        RETURN NULL;
    END IF;
    v_n := array_length(v_pid, 1);

    IF v_n <= 16 THEN
        -- Each concerned participant in id order: its counter advanced by its number of events, which take the
        -- numbers after the counter's last in the order above.
        v_num := array_fill(0::bigint, ARRAY[v_n]);
        FOR p IN SELECT DISTINCT x FROM unnest(v_pid) AS x ORDER BY x LOOP
            v_count := 0;
            FOR i IN 1 .. v_n LOOP
                IF v_pid[i] = p THEN
                    v_count := v_count + 1;
                END IF;
            END LOOP;
            INSERT INTO exchange_participanteventcounter AS c (participant_id, last_number) VALUES (p, v_count)
            ON CONFLICT (participant_id) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
            RETURNING c.last_number INTO v_last;
            v_k := v_last - v_count;
            FOR i IN 1 .. v_n LOOP
                IF v_pid[i] = p THEN
                    v_k := v_k + 1;
                    v_num[i] := v_k;
                END IF;
            END LOOP;
            PERFORM pg_notify('greenledger_events', p::text);
        END LOOP;
        INSERT INTO exchange_participantevent (participant_id, number, type, payload, audit_seq, created_at)
        SELECT e.pid, e.num, e.kind, e.pay, e.seq, e.at
          FROM unnest(v_pid, v_num, v_type, v_pay, v_seq, v_at) AS e(pid, num, kind, pay, seq, at);
        RETURN NULL;
    END IF;

    PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);  -- the SET clause keeps this to the call
    WITH found AS (
        SELECT e.pid, e.kind, e.pay, e.seq, e.at, e.i, row_number() OVER (PARTITION BY e.pid ORDER BY e.i) AS k,
               count(*) OVER (PARTITION BY e.pid) AS n
          FROM unnest(v_pid, v_type, v_pay, v_seq, v_at) WITH ORDINALITY AS e(pid, kind, pay, seq, at, i)
    ), counters AS (
        INSERT INTO exchange_participanteventcounter AS c (participant_id, last_number)
        SELECT pid, max(n) FROM found GROUP BY pid ORDER BY pid
        ON CONFLICT (participant_id) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
        RETURNING c.participant_id, c.last_number
    )
    INSERT INTO exchange_participantevent (participant_id, number, type, payload, audit_seq, created_at)
    SELECT f.pid, ct.last_number - f.n + f.k, f.kind, f.pay, f.seq, f.at
      FROM found f JOIN counters ct ON ct.participant_id = f.pid
     ORDER BY f.i;
    PERFORM pg_notify('greenledger_events', x::text) FROM (SELECT DISTINCT x FROM unnest(v_pid) AS x) AS d;
    RETURN NULL;
END
$$;
