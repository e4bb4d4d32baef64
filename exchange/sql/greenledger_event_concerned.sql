-- The participants an audit event concerns, and what each may see of it: one row per (participant, event).
--
-- Called by greenledger_event_project for each route of the event's action (exchange_eventroute, written
-- from exchange.events.ROUTES). ``p_resolver`` names how the participants are found; ``p_args`` its
-- arguments (a JSON object); ``p`` the audit payload. Each resolver builds a participant's payload only from
-- what that participant may see (``fields``: the payload keys both parties see, or "*" for all but the
-- entry digest, where every concerned participant is a party to all of it): its own order, its own side of a fill, its own totals in a settlement,
-- the fields listed in ``fields`` of an event both parties see. Rows come out in the order the events
-- happened (``ord``). Numbers that the audit payload writes as strings (canonical JSON), of the kinds listed
-- in ``v_ints`` and of the payload keys a route names in its ``ints``, come out as JSON numbers; money stays
-- a yuan string.
--
--   accounts          participants holding the accounts numbered in the payload keys ``keys``
--   row               the columns ``columns`` (participant ids) of the row of ``table`` whose id is the
--                     payload key ``key`` (or the event's object id)
--   rows              each element of the payload list ``list`` to the holders of the accounts at its
--                     positions ``accounts``, with its positions ``columns`` named
--   fills             each fill of an order placement or a listing pick: the placer's side and the resting
--                     order's side (``resting``, ``price``, ``quantity``: positions in a trade of p.trades;
--                     without ``price``, the payload's price)
--   auction           each order of a closed auction (the offer and every bid), to its participant: its own
--                     result
--   valuations       each pledge of a valuation run, to its borrower and its lender
--   orders_at_close   each order the session close ended, to its participant
--   settlement        each participant's own trades and totals in a settlement batch
CREATE OR REPLACE FUNCTION greenledger_event_concerned(
    p_resolver text, p_args jsonb, p_object_id text, p_at timestamptz, p jsonb
) RETURNS TABLE (participant_id bigint, payload jsonb, ord bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_fields text[];
    v_ints text[] := ARRAY['quantity', 'order', 'trade', 'transaction', 'pending_transfer', 'pledge', 'batch',
                           'filled', 'unfilled', 'released', 'hold', 'reserved', 'year', 'request', 'shortfall',
                           'emissions', 'call', 'units', 'retirement', 'issuance', 'surrender', 'approval',
                           'offer', 'freeze', 'non_trade_transfer', 'auction', 'sold', 'unsold'];
    v_base jsonb := '{}';
    v_id text;
BEGIN
    -- Every event passes here once per route of its action, in its own transaction: what a route doesn't use
    -- (its own ints, listed fields) costs no query.
    IF p_args ? 'ints' THEN
        v_ints := v_ints || ARRAY(SELECT jsonb_array_elements_text(p_args->'ints'));
    END IF;
    -- The listed fields of the payload (numbers of the listed kinds as numbers), and the object's id.
    IF p_args ? 'fields' THEN
        v_fields := CASE WHEN p_args->>'fields' = '*' THEN ARRAY(SELECT jsonb_object_keys(p - 'entry_digest'))
                         ELSE ARRAY(SELECT jsonb_array_elements_text(p_args->'fields')) END;
        SELECT COALESCE(jsonb_object_agg(k, CASE WHEN k = ANY(v_ints) AND jsonb_typeof(p->k) = 'string'
                                                      AND (p->>k) ~ '^-?[0-9]{1,18}$'
                                                 THEN to_jsonb((p->>k)::bigint) ELSE p->k END), '{}')
          INTO v_base FROM unnest(v_fields) AS k WHERE p ? k;
    END IF;
    IF p_args ? 'id_as' THEN
        v_base := v_base || jsonb_build_object(p_args->>'id_as',
                                               CASE WHEN p_object_id ~ '^[0-9]{1,18}$' THEN to_jsonb(p_object_id::bigint)
                                                    ELSE to_jsonb(p_object_id) END);
    END IF;

    IF p_resolver = 'accounts' THEN
        RETURN QUERY
            SELECT a.participant_id, v_base, min(k.i)
              FROM jsonb_array_elements_text(p_args->'keys') WITH ORDINALITY AS k(key, i)
              JOIN exchange_account a ON a.number = p->>k.key
             WHERE a.participant_id IS NOT NULL
             GROUP BY a.participant_id;

    ELSIF p_resolver = 'row' THEN
        -- A key the payload states as null (a block offer to nobody in particular) concerns nobody.
        v_id := CASE WHEN p_args ? 'key' AND p ? (p_args->>'key') THEN p->>(p_args->>'key') ELSE p_object_id END;
        IF v_id IS NULL OR v_id !~ '^[0-9]{1,18}$' THEN
            RETURN;
        END IF;
        IF p_args->>'table' = 'exchange_order' AND p_args->'columns' = '["participant_id"]' THEN
            -- An order's participant (every order placed, through the matching engine too): the statement
            -- below for this table and column, written out so that its plan is kept between calls.
            RETURN QUERY
                SELECT t.participant_id, v_base, 1::bigint
                  FROM exchange_order t
                 WHERE t.id = v_id::bigint AND t.participant_id IS NOT NULL;
            RETURN;
        END IF;
        RETURN QUERY EXECUTE format(
            'SELECT DISTINCT ON (x.pid) x.pid, $1, x.i FROM %I t, LATERAL unnest(ARRAY[%s]::bigint[]) WITH ORDINALITY AS x(pid, i)'
            ' WHERE t.id = $2 AND x.pid IS NOT NULL ORDER BY x.pid, x.i',
            p_args->>'table',
            (SELECT string_agg(format('t.%I', c), ', ') FROM jsonb_array_elements_text(p_args->'columns') c))
            USING v_base, v_id::bigint;

    ELSIF p_resolver = 'rows' THEN
        -- p.<list>: an array of arrays (allocation rows, batch transfers). Each element goes to the holders
        -- of the accounts at the positions ``accounts``, with the element's positions named in ``columns``.
        RETURN QUERY
            SELECT DISTINCT ON (e.i, a.participant_id) a.participant_id,
                   v_base || (SELECT jsonb_object_agg(c.key, CASE WHEN c.key = ANY(v_ints) AND (e.x->>(c.value::int)) ~ '^-?[0-9]{1,18}$'
                                                            THEN to_jsonb((e.x->>(c.value::int))::bigint)
                                                            ELSE e.x->(c.value::int) END)
                                FROM jsonb_each_text(p_args->'columns') c),
                   e.i
              FROM jsonb_array_elements(p->(p_args->>'list')) WITH ORDINALITY AS e(x, i)
             CROSS JOIN jsonb_array_elements_text(p_args->'accounts') AS k(pos)
              JOIN exchange_account a ON a.number = e.x->>(k.pos::int)
             WHERE a.participant_id IS NOT NULL
             ORDER BY e.i, a.participant_id;

    ELSIF p_resolver = 'fills' THEN
        -- p.trades: [[trade, resting order, price, quantity], ...] (an order placement) or
        -- [[trade, listing, quantity], ...] at p.price (a listing pick); the placed order is p.order. Each side's
        -- order is looked up by its id, a probe of the primary key per side (OFFSET 0 keeps the lateral subquery
        -- from being flattened): the generic plan estimates 100 trades and hash-joined the whole order table at
        -- every call, a cost that grew with every order placed.
        RETURN QUERY
            SELECT o.participant_id,
                   jsonb_build_object('order', o.id, 'client_order_id', o.client_order_id, 'trade', (f.t->>0)::bigint,
                                      'asset', p->'asset', 'side', o.side,
                                      'price', CASE WHEN p_args ? 'price' OR NOT p_args ? 'resting'
                                                    THEN f.t->COALESCE((p_args->>'price')::int, 2) ELSE p->'price' END,
                                      'quantity', (f.t->>COALESCE((p_args->>'quantity')::int, 3))::bigint,
                                      'order_filled', o.filled, 'order_status', o.status, 'liquidity', s.liquidity),
                   f.i * 2 + s.n
              FROM jsonb_array_elements(p->'trades') WITH ORDINALITY AS f(t, i)
             CROSS JOIN LATERAL (VALUES ((p->>'order')::bigint, 'taker', 0),
                                        ((f.t->>COALESCE((p_args->>'resting')::int, 1))::bigint, 'maker', 1))
                   AS s(order_id, liquidity, n)
             CROSS JOIN LATERAL (SELECT o.id, o.participant_id, o.client_order_id, o.side, o.filled, o.status
                                   FROM exchange_order o WHERE o.id = s.order_id OFFSET 0) AS o;

    ELSIF p_resolver = 'auction' THEN
        -- p.trades: [[trade, bid, price, quantity], ...]. The offeror sees every trade of its offer and what
        -- was sold; a bidder sees its own bid's trades and what was released of it, nobody else's.
        RETURN QUERY
            SELECT o.participant_id,
                   jsonb_build_object('auction', p_object_id::bigint, 'order', o.id, 'side', o.side,
                                      'quantity', o.quantity, 'filled', o.filled, 'status', o.status,
                                      'pricing', p->'pricing', 'clearing_price', p->'clearing_price',
                                      'trades', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                                            'trade', (t.x->>0)::bigint, 'price', t.x->2,
                                                            'quantity', (t.x->>3)::bigint) ORDER BY t.i)
                                                            FROM jsonb_array_elements(p->'trades') WITH ORDINALITY AS t(x, i)
                                                           WHERE o.side = 'sell' OR (t.x->>1)::bigint = o.id), '[]'))
                   || CASE WHEN o.side = 'sell'
                           THEN jsonb_build_object('sold', (p->>'sold')::bigint, 'unsold', (p->>'unsold')::bigint)
                           ELSE '{}' END,
                   o.id
              FROM exchange_order o
             WHERE o.auction_id = p_object_id::bigint;

    ELSIF p_resolver = 'valuations' THEN
        -- p.valued: [[pledge, ltv_bp], ...]: each pledge's valuation to its borrower and its lender.
        RETURN QUERY
            SELECT x.pid, jsonb_build_object('pledge', l.id, 'ltv_bp', (v.x->>1)::bigint, 'day', p->'day'), v.i
              FROM jsonb_array_elements(p->'valued') WITH ORDINALITY AS v(x, i)
              JOIN exchange_pledgeloan l ON l.id = (v.x->>0)::bigint
             CROSS JOIN LATERAL (VALUES (l.borrower_id), (l.lender_id)) AS x(pid);

    ELSIF p_resolver = 'orders_at_close' THEN
        RETURN QUERY
            SELECT o.participant_id,
                   jsonb_build_object('order', o.id, 'client_order_id', o.client_order_id, 'side', o.side,
                                      'asset', a.code, 'filled', o.filled, 'unfilled', o.quantity - o.filled,
                                      'reason', o.end_reason),
                   o.id
              FROM exchange_order o JOIN exchange_asset a ON a.id = o.asset_id
             WHERE o.id BETWEEN (p->>'first')::bigint AND (p->>'last')::bigint
               AND o.end_reason = 'session_close' AND o.ended_at = p_at;

    ELSIF p_resolver = 'settlement' THEN
        -- Each side of each trade of the batch, summed per participant and asset (one statement over
        -- the batch's settlement links, by their batch index).
        RETURN QUERY
            WITH sides AS (
                SELECT o.participant_id AS pid, t.id AS trade, t.asset_id, t.quantity AS bought, 0::bigint AS sold,
                       -t.turnover_fen - t.buyer_fee_fen AS cash
                  FROM exchange_tradesettlement ts JOIN exchange_trade t ON t.id = ts.trade_id
                  JOIN exchange_order o ON o.id = t.buy_order_id
                 WHERE ts.batch_id = p_object_id::bigint
                UNION ALL
                SELECT o.participant_id, t.id, t.asset_id, 0::bigint, t.quantity, t.turnover_fen - t.seller_fee_fen
                  FROM exchange_tradesettlement ts JOIN exchange_trade t ON t.id = ts.trade_id
                  JOIN exchange_order o ON o.id = t.sell_order_id
                 WHERE ts.batch_id = p_object_id::bigint
            ), per_asset AS (
                SELECT pid, a.code AS asset, count(*) AS n, array_agg(trade ORDER BY trade) AS trades,
                       sum(bought)::bigint AS bought, sum(sold)::bigint AS sold,
                       sum(cash)::bigint AS cash
                  FROM sides JOIN exchange_asset a ON a.id = sides.asset_id GROUP BY pid, a.code
            )
            SELECT pid,
                   jsonb_build_object(
                       'batch', p_object_id::bigint, 'transaction', (p->>'transaction')::bigint,
                       'trades', sum(n),
                       'assets', jsonb_agg(jsonb_build_object(
                           'asset', asset, 'trades', to_jsonb(trades), 'bought', bought, 'sold', sold,
                           'net_cash', CASE WHEN cash < 0 THEN '-' ELSE '' END || (abs(cash) / 100)::text || '.'
                                       || lpad((abs(cash) % 100)::text, 2, '0')) ORDER BY asset)),
                   pid
              FROM per_asset GROUP BY pid;

    ELSE
        RAISE EXCEPTION 'greenledger: unknown event resolver %', p_resolver;
    END IF;
END
$$;
