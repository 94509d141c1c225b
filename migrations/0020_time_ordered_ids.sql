-- 0020_time_ordered_ids: message ids are UUID version 7 (RFC 9562 §5.7: 48 bits of Unix
-- time in milliseconds, then random bits), no longer version 4. The primary key of
-- `message` is (id, to_agent_id): with random ids every new message (and every claim and
-- ack, which write a new index entry beside the old one) touched a random leaf of an index
-- as large as the history, so the cost of a send grew with the table (pages read back into
-- shared buffers, and a full-page image in the WAL for the first change of each page after
-- a checkpoint). Time-ordered ids keep those writes on the index's newest pages. The 74
-- random bits still make ids unguessable; nothing reads meaning from an id's time.
-- enqueue_message is otherwise as in 0019. The column default (unused: enqueue_message
-- gives every id) stays. CREATE OR REPLACE: safe to run twice; valid on Citus, where the
-- function runs on the coordinator as enqueue_message does.
CREATE OR REPLACE FUNCTION admp_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  -- The random bytes of a version 4 UUID (its variant bits kept), the first 6 bytes
  -- replaced by the time, and the version nibble turned from 0100 into 0111 (bits 52, 53).
  SELECT encode(
           set_bit(set_bit(
             overlay(uuid_send(gen_random_uuid())
                     PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                     FROM 1 FOR 6),
             52, 1), 53, 1),
           'hex')::uuid
$$;

CREATE OR REPLACE FUNCTION enqueue_message(
  items jsonb, notify boolean DEFAULT true,
  q_ord integer[] DEFAULT '{}', q_key text[] DEFAULT '{}', q_interval bigint[] DEFAULT '{}',
  q_burst integer[] DEFAULT '{}', q_group integer[] DEFAULT '{}', now_us bigint DEFAULT 0)
RETURNS TABLE (idx integer, id uuid, duplicate boolean, status message_status, conflict boolean,
               refused boolean, quota_key text, quota_tat_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
  mids uuid[];
  keys bytea[];
  claimed uuid[];
  inboxes text[];
  outbound boolean;
  dup_agents text[];
  dup_keys bytea[];
  h_agents text[];
  h_keys bytea[];
  h_ids uuid[];
  h_status message_status[];
  h_fps bytea[];
  dup_until timestamptz[];
  -- Items refused by a quota (their ids), and per item over a quota the key and its tat.
  refused_ids uuid[] := '{}';
  refused_agents text[];
  r_ord integer[] := '{}';
  r_key text[] := '{}';
  r_tat bigint[] := '{}';
BEGIN
  IF jsonb_typeof(items) <> 'array' THEN
    RAISE EXCEPTION 'enqueue_message expects a JSON array' USING ERRCODE = '22023';
  END IF;
  -- Per item, in input order: a new id and the dedupe key (none without either source).
  SELECT array_agg(admp_uuid_v7() ORDER BY e.ord),
         array_agg(CASE WHEN e.it->>'idempotency_key' IS NOT NULL
                          THEN '\x01'::bytea || sha256(convert_to((e.it->>'from_agent') || E'\n' || (e.it->>'idempotency_key'), 'UTF8'))
                        WHEN e.it->>'source_fingerprint' IS NOT NULL
                          THEN '\x02'::bytea || decode(e.it->>'source_fingerprint', 'hex') END ORDER BY e.ord)
    INTO mids, keys
    FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord);

  -- Claim each key. ON CONFLICT waits for a concurrent holder, so a key belongs to
  -- exactly one committed message; an equal key later in the same batch loses to the earlier.
  WITH c AS (
    INSERT INTO message_dedupe (to_agent_id, key, message_id, keep_until)
    SELECT e.it->>'to_agent_id', keys[e.ord], mids[e.ord], to_timestamp((e.it->>'replay_until')::double precision)
      FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
     WHERE keys[e.ord] IS NOT NULL
     ORDER BY e.ord
    ON CONFLICT DO NOTHING
    RETURNING message_id)
  SELECT coalesce(array_agg(c.message_id), '{}') INTO claimed FROM c;

  IF cardinality(q_ord) > 0 THEN
    -- Count the quotas of the items stored new. Per key, the first items (in batch order)
    -- take what was granted. Keys are taken in key order, so concurrent statements of
    -- several instances lock the rows in the same order and never deadlock.
    WITH ch AS (
      SELECT u.o, u.k, u.iv, u.b, row_number() OVER (PARTITION BY u.k ORDER BY u.o) AS rn
        FROM unnest(q_ord, q_key, q_interval, q_burst) AS u(o, k, iv, b)
       WHERE keys[u.o] IS NULL OR mids[u.o] = ANY(claimed)),
    counted AS (
      INSERT INTO rate_quota AS q (key, tat_us, interval_us, burst, granted)
      SELECT a.k, now_us + LEAST(a.n, a.b) * a.iv, a.iv, a.b, LEAST(a.n, a.b)
        FROM (SELECT ch.k, count(*)::integer AS n, max(ch.iv) AS iv, max(ch.b) AS b FROM ch GROUP BY ch.k) AS a
       ORDER BY a.k
      ON CONFLICT (key) DO UPDATE SET (granted, tat_us, interval_us, burst) = (
        -- As many as fit: the k-th is admitted while base + k × interval - now <= burst × interval.
        -- EXCLUDED.granted holds min(n, burst), never less than what can fit.
        SELECT g, base + g * EXCLUDED.interval_us, EXCLUDED.interval_us, EXCLUDED.burst
          FROM (SELECT GREATEST(q.tat_us, now_us) AS base) AS t,
               LATERAL (SELECT GREATEST(0, LEAST(EXCLUDED.granted,
                          (now_us + EXCLUDED.burst * EXCLUDED.interval_us - base) / EXCLUDED.interval_us)) AS g) AS f)
      RETURNING q.key, q.granted, q.tat_us),
    refusing AS (
      -- Per item over a quota, the first key that refused it.
      SELECT DISTINCT ON (ch.o) ch.o, ch.k, counted.tat_us
        FROM ch JOIN counted ON counted.key = ch.k
       WHERE ch.rn > counted.granted
       ORDER BY ch.o, ch.k)
    SELECT coalesce(array_agg(refusing.o), '{}'), coalesce(array_agg(refusing.k), '{}'), coalesce(array_agg(refusing.tat_us), '{}')
      INTO r_ord, r_key, r_tat FROM refusing;
  END IF;

  IF cardinality(r_ord) > 0 THEN
    -- The group of an item over a quota is refused whole; its claimed keys are given back.
    -- (The recipients name the shards on Citus.)
    SELECT array_agg(mids[e.ord]), array_agg(e.it->>'to_agent_id') INTO refused_ids, refused_agents
      FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
     WHERE e.ord = ANY(r_ord) OR q_group[e.ord] IN (SELECT q_group[o] FROM unnest(r_ord) AS o);
    DELETE FROM message_dedupe d WHERE d.to_agent_id = ANY(refused_agents) AND d.message_id = ANY(refused_ids);
  END IF;

  -- One multi-row INSERT for the new messages (a key-less item is always new).
  WITH ins AS (
    INSERT INTO message AS m (id, to_agent_id, channel, from_agent, subject, type, body, headers,
                              correlation_id, idempotency_key, status, ttl_sec, expires_at, delivered_at,
                              in_reply_to, source_fingerprint, auth, mail_message_id, delivery_log)
    SELECT mids[e.ord], e.it->>'to_agent_id', (e.it->>'channel')::message_channel,
           e.it->>'from_agent', e.it->>'subject', e.it->>'type', e.it->'body', coalesce(e.it->'headers', '{}'),
           e.it->>'correlation_id', e.it->>'idempotency_key', s.st, (e.it->>'ttl_sec')::integer,
           now() + make_interval(secs => (e.it->>'ttl_sec')::integer),
           CASE WHEN s.st = 'delivered' THEN now() END,
           (e.it->>'in_reply_to')::uuid, decode(e.it->>'source_fingerprint', 'hex'), e.it->'auth', e.it->>'mail_message_id',
           jsonb_build_array(jsonb_build_object('at', now(), 'event', s.st, 'channel', e.it->>'channel'))
      FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
     CROSS JOIN LATERAL (SELECT coalesce(e.it->>'status', 'delivered')::message_status AS st) s
     WHERE (keys[e.ord] IS NULL OR mids[e.ord] = ANY(claimed)) AND NOT (mids[e.ord] = ANY(refused_ids))
     ORDER BY e.ord
    RETURNING m.to_agent_id, m.status)
  SELECT coalesce(array_agg(DISTINCT ins.to_agent_id) FILTER (WHERE ins.status = 'delivered'), '{}'),
         coalesce(bool_or(ins.status = 'queued'), false)
    INTO inboxes, outbound FROM ins;
  -- Its search entry: the same items, the same now() as message.created_at (one transaction).
  INSERT INTO message_search (created_at, to_agent_id, id, from_agent, correlation_id)
  SELECT now(), e.it->>'to_agent_id', mids[e.ord], e.it->>'from_agent', e.it->>'correlation_id'
    FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
   WHERE (keys[e.ord] IS NULL OR mids[e.ord] = ANY(claimed)) AND NOT (mids[e.ord] = ANY(refused_ids));

  IF notify THEN PERFORM notify_enqueued(inboxes, outbound); END IF;

  -- No duplicate and no refusal (the usual case): every item answers with its own id.
  IF cardinality(claimed) = cardinality(array_remove(keys, NULL)) AND cardinality(refused_ids) = 0 THEN
    RETURN QUERY
      SELECT (e.ord - 1)::integer, mids[e.ord], false, coalesce(e.it->>'status', 'delivered')::message_status, false,
             false, NULL::text, NULL::bigint
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
       ORDER BY e.ord;
    RETURN;
  END IF;
  -- The others answer with the key holder's id and status. The holders are read in one
  -- statement that joins message_dedupe and message on to_agent_id (on Citus one pushed-down
  -- join per shard: a lateral join to this function's items cannot be distributed), then
  -- matched to the items here.
  SELECT array_agg(e.it->>'to_agent_id'), array_agg(keys[e.ord]),
         array_agg(to_timestamp((e.it->>'replay_until')::double precision))
    INTO dup_agents, dup_keys, dup_until
    FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
   WHERE keys[e.ord] IS NOT NULL AND NOT (mids[e.ord] = ANY(claimed));
  -- A copy signed again under the same Message-ID can be accepted until its own window
  -- ends: the key is kept until the latest of them. Only here, on the duplicate path.
  UPDATE message_dedupe d SET keep_until = u.until
    FROM unnest(dup_agents, dup_keys, dup_until) AS u(agent, key, until)
   WHERE d.to_agent_id = u.agent AND d.key = u.key AND d.keep_until < u.until;
  SELECT array_agg(d.to_agent_id), array_agg(d.key), array_agg(m.id), array_agg(m.status), array_agg(m.source_fingerprint)
    INTO h_agents, h_keys, h_ids, h_status, h_fps
    FROM message_dedupe d
    JOIN message m ON m.id = d.message_id AND m.to_agent_id = d.to_agent_id
   WHERE d.to_agent_id = ANY(dup_agents) AND d.key = ANY(dup_keys);
  RETURN QUERY
    SELECT (e.ord - 1)::integer, coalesce(h.id, mids[e.ord]), h.id IS NOT NULL,
           coalesce(h.status, coalesce(e.it->>'status', 'delivered')::message_status),
           -- A conflict is a duplicate key with other content; an item stored new (no holder
           -- joined) in a batch that also holds duplicates is never one.
           (h.id IS NOT NULL AND e.it->>'idempotency_key' IS NOT NULL
             AND h.fp IS DISTINCT FROM decode(e.it->>'source_fingerprint', 'hex')),
           mids[e.ord] = ANY(refused_ids), r.k, r.tat
      FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
      LEFT JOIN unnest(h_agents, h_keys, h_ids, h_status, h_fps) AS h(agent, key, id, status, fp)
        ON h.agent = e.it->>'to_agent_id' AND h.key = keys[e.ord] AND NOT (mids[e.ord] = ANY(claimed))
      LEFT JOIN unnest(r_ord, r_key, r_tat) AS r(o, k, tat) ON r.o = e.ord
     ORDER BY e.ord;
END $$;
