-- Project one audit event into participant events, in the audit event's own transaction (an outbox).
--
-- The AFTER INSERT trigger on exchange_auditevent: every audit event, however written (audit_record,
-- greenledger_transfer), passes here. An action with no route (exchange_eventroute, written from
-- exchange.events.ROUTES) costs one index probe and produces nothing. Otherwise the concerned participants'
-- events (greenledger_event_concerned) are numbered per participant: each participant's counter row is
-- locked and advanced, in participant id order (the last step of exchange.locks' order, after the audit
-- writers' lock), so a participant's numbers commit in order with no gap. Each concerned participant is
-- then notified (NOTIFY greenledger_events, payload its id), delivered at commit; the event stream wakes
-- on it and reads the table, which is the truth.
--
-- Most events concern one or two participants: they are numbered here one counter statement each, and
-- written by one INSERT. An event that concerns many (a settlement batch: every buyer and seller) is
-- numbered and written by one set-wise statement instead, planned for its arrays; the few-participant path
-- runs generic plans (plan_cache_mode), whose planning per call cost more than the statements.
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
    p bigint;
    i int;
BEGIN
    SELECT array_agg(c.participant_id ORDER BY c.ord, r.id), array_agg(r.event_type ORDER BY c.ord, r.id),
           array_agg(c.payload ORDER BY c.ord, r.id)
      INTO v_pid, v_type, v_pay
      FROM exchange_eventroute r
     CROSS JOIN LATERAL greenledger_event_concerned(r.resolver, r.args, NEW.object_id, NEW.created_at,
                                                    NEW.payload::jsonb) AS c
     WHERE r.action = NEW.action;
    IF v_pid IS NULL THEN
        RETURN NULL;
    END IF;
    v_n := array_length(v_pid, 1);

    IF v_n <= 16 THEN
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
        SELECT e.pid, e.num, e.kind, e.pay, NEW.seq, NEW.created_at
          FROM unnest(v_pid, v_num, v_type, v_pay) AS e(pid, num, kind, pay);
        RETURN NULL;
    END IF;

    PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);  -- the SET clause keeps this to the call
    WITH found AS (
        SELECT e.pid, e.kind, e.pay, e.i,
               row_number() OVER (PARTITION BY e.pid ORDER BY e.i) AS k, count(*) OVER (PARTITION BY e.pid) AS n
          FROM unnest(v_pid, v_type, v_pay) WITH ORDINALITY AS e(pid, kind, pay, i)
    ), counters AS (
        INSERT INTO exchange_participanteventcounter AS c (participant_id, last_number)
        SELECT pid, max(n) FROM found GROUP BY pid ORDER BY pid
        ON CONFLICT (participant_id) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
        RETURNING c.participant_id, c.last_number
    )
    INSERT INTO exchange_participantevent (participant_id, number, type, payload, audit_seq, created_at)
    SELECT f.pid, ct.last_number - f.n + f.k, f.kind, f.pay, NEW.seq, NEW.created_at
      FROM found f JOIN counters ct ON ct.participant_id = f.pid;
    PERFORM pg_notify('greenledger_events', x::text) FROM (SELECT DISTINCT x FROM unnest(v_pid) AS x) AS d;
    RETURN NULL;
END
$$;
