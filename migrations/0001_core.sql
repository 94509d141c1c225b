-- 0001_core: agents, credentials, keys, the message queue and its single enqueue path.
-- Every unique index on message and message_dedupe includes to_agent_id, so both can be
-- hash-partitioned or distributed by to_agent_id later (docs/scaling.md).

CREATE EXTENSION IF NOT EXISTS pgcrypto; -- gen_random_uuid() on PostgreSQL < 13; built in since 13

DO $$ BEGIN
  CREATE TYPE message_status AS ENUM ('queued', 'sent', 'delivered', 'leased', 'acked', 'failed', 'dead');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
  CREATE TYPE message_channel AS ENUM ('http', 'smtp');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS agent (
  id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  domain     text NOT NULL CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
  status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens are stored as SHA-256 hashes only. HMAC secrets must be kept in
-- the clear because the server recomputes the MAC; protect the database accordingly.
CREATE TABLE IF NOT EXISTS agent_credential (
  id          bigserial PRIMARY KEY,
  agent_id    text NOT NULL REFERENCES agent (id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('token', 'hmac')),
  token_hash  bytea UNIQUE CHECK (kind <> 'token' OR octet_length(token_hash) = 32),
  secret      bytea CHECK (kind <> 'hmac' OR octet_length(secret) >= 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS agent_credential_agent ON agent_credential (agent_id) WHERE revoked_at IS NULL;

-- Ed25519 public keys, ours and pinned partner keys, looked up by (domain, kid),
-- never by kid alone (docs/protocol.md §Keys).
CREATE TABLE IF NOT EXISTS agent_key (
  domain      text NOT NULL,
  kid         text NOT NULL CHECK (kid ~ '^[A-Za-z0-9._-]{1,128}$'),
  agent       text NOT NULL,          -- agent address local@domain the key belongs to
  public_key  bytea NOT NULL CHECK (octet_length(public_key) = 32),
  source      text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'pinned')),
  not_before  timestamptz NOT NULL DEFAULT now(),
  not_after   timestamptz,
  revoked_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, kid),
  CHECK (split_part(agent, '@', 2) = domain)
);
CREATE INDEX IF NOT EXISTS agent_key_agent ON agent_key (agent);

CREATE TABLE IF NOT EXISTS message (
  id                 uuid NOT NULL DEFAULT gen_random_uuid(),
  to_agent_id        text NOT NULL,   -- local agent id (inbox); full address for outbound mail
  channel            message_channel NOT NULL,
  from_agent         text NOT NULL,   -- sender agent address local@domain
  subject            text,
  type               text NOT NULL,
  body               jsonb NOT NULL,
  headers            jsonb NOT NULL DEFAULT '{}',
  correlation_id     text,
  idempotency_key    text,
  status             message_status NOT NULL,
  lease_id           uuid,
  lease_until        timestamptz,
  visible_at         timestamptz NOT NULL DEFAULT now(),
  attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  ttl_sec            integer NOT NULL CHECK (ttl_sec > 0),
  created_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  delivered_at       timestamptz,
  acked_at           timestamptz,
  reply              uuid,            -- id of the reply message, once replied
  in_reply_to        uuid,            -- id of the message this one answers
  delivery_log       jsonb NOT NULL DEFAULT '[]',
  source_fingerprint bytea CHECK (octet_length(source_fingerprint) = 32),
  auth               jsonb,           -- authentication verdicts recorded at ingress (audit trail)
  mail_message_id    text,            -- RFC 5322 Message-ID it arrived or left with (ties DSNs back, RFC 3464)
  PRIMARY KEY (id, to_agent_id),
  CHECK ((status = 'leased') = (lease_until IS NOT NULL)),
  CHECK (status <> 'leased' OR lease_id IS NOT NULL)
);

-- Dedupe keys live in their own table, written once at enqueue: on message itself
-- every claim and ack (a status change, so never a HOT update) would rewrite their
-- index entries too. One key per message: the sender's idempotency key (scoped to the
-- sender as well, so one sender cannot suppress another's messages by guessing keys),
-- else the source fingerprint (src/core/fingerprint.ts).
CREATE TABLE IF NOT EXISTS message_dedupe (
  to_agent_id text NOT NULL,
  key         bytea NOT NULL CHECK (octet_length(key) = 33), -- kind byte (1 idempotency, 2 fingerprint) + SHA-256
  message_id  uuid NOT NULL,
  PRIMARY KEY (to_agent_id, key)
);

-- The claim path: per-agent FIFO over deliverable rows only. A partial index keeps
-- ORDER BY created_at cheap (without it FIFO is ~50x slower, research/perf.md).
CREATE INDEX IF NOT EXISTS message_inbox
  ON message (to_agent_id, created_at, id) WHERE status = 'delivered';
-- Lease reclaim and TTL sweeps.
CREATE INDEX IF NOT EXISTS message_leases ON message (lease_until) WHERE status = 'leased';
CREATE INDEX IF NOT EXISTS message_expiry ON message (expires_at) WHERE status IN ('queued', 'delivered');
CREATE INDEX IF NOT EXISTS message_mail_message_id ON message (mail_message_id) WHERE mail_message_id IS NOT NULL;

-- The only way a message row is created, for every channel. Takes a JSON array of
-- messages (so concurrent callers can be batched into one statement and one commit)
-- and returns, in input order, each message's id and whether it was a duplicate.
-- A duplicate (same sender idempotency key, or same source fingerprint, for the same
-- recipient) returns the original row's id; it never creates a second row. `conflict`
-- says an idempotency key came back with a different message (another fingerprint).
-- Wakes long polls (admp_inbox, payload = agent id; src/queue/inbox-waiter.ts) and the
-- outbound worker (admp_outbound).
CREATE OR REPLACE FUNCTION notify_enqueued(inboxes text[], outbound boolean) RETURNS void
LANGUAGE sql AS $$
  SELECT pg_notify('admp_inbox', a) FROM unnest(inboxes) AS a;
  SELECT pg_notify('admp_outbound', '') WHERE outbound;
$$;

-- PostgreSQL commits notifying transactions one at a time (a global lock held through
-- the commit's WAL flush), so a busy caller passes notify => false and calls
-- notify_enqueued in a transaction of its own after this one committed (src/queue/enqueue.ts);
-- then concurrent enqueue commits share WAL flushes again.
CREATE OR REPLACE FUNCTION enqueue_message(items jsonb, notify boolean DEFAULT true)
RETURNS TABLE (idx integer, id uuid, duplicate boolean, status message_status, conflict boolean)
LANGUAGE plpgsql AS $$
DECLARE
  mids uuid[];
  keys bytea[];
  claimed uuid[];
  inboxes text[];
  outbound boolean;
BEGIN
  IF jsonb_typeof(items) <> 'array' THEN
    RAISE EXCEPTION 'enqueue_message expects a JSON array' USING ERRCODE = '22023';
  END IF;
  -- Per item, in input order: a new id and the dedupe key (none without either source).
  SELECT array_agg(gen_random_uuid() ORDER BY e.ord),
         array_agg(CASE WHEN e.it->>'idempotency_key' IS NOT NULL
                          THEN '\x01'::bytea || sha256(convert_to((e.it->>'from_agent') || E'\n' || (e.it->>'idempotency_key'), 'UTF8'))
                        WHEN e.it->>'source_fingerprint' IS NOT NULL
                          THEN '\x02'::bytea || decode(e.it->>'source_fingerprint', 'hex') END ORDER BY e.ord)
    INTO mids, keys
    FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord);

  -- Claim each key. ON CONFLICT waits for a concurrent holder, so a key belongs to
  -- exactly one committed message; an equal key later in the same batch loses to the earlier.
  WITH c AS (
    INSERT INTO message_dedupe (to_agent_id, key, message_id)
    SELECT e.it->>'to_agent_id', keys[e.ord], mids[e.ord]
      FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
     WHERE keys[e.ord] IS NOT NULL
     ORDER BY e.ord
    ON CONFLICT DO NOTHING
    RETURNING message_id)
  SELECT coalesce(array_agg(c.message_id), '{}') INTO claimed FROM c;

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
     WHERE keys[e.ord] IS NULL OR mids[e.ord] = ANY(claimed)
     ORDER BY e.ord
    RETURNING m.to_agent_id, m.status)
  SELECT coalesce(array_agg(DISTINCT ins.to_agent_id) FILTER (WHERE ins.status = 'delivered'), '{}'),
         coalesce(bool_or(ins.status = 'queued'), false)
    INTO inboxes, outbound FROM ins;

  IF notify THEN PERFORM notify_enqueued(inboxes, outbound); END IF;

  -- No duplicate (the usual case): every item answers with its own id.
  IF cardinality(claimed) = cardinality(array_remove(keys, NULL)) THEN
    RETURN QUERY
      SELECT (e.ord - 1)::integer, mids[e.ord], false, coalesce(e.it->>'status', 'delivered')::message_status, false
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
       ORDER BY e.ord;
    RETURN;
  END IF;
  -- New items answer with their own id; the others with the key holder's (a LATERAL
  -- lookup, so each duplicate is one primary-key probe, never a scan).
  RETURN QUERY
    SELECT (e.ord - 1)::integer, coalesce(dup.id, mids[e.ord]), dup.id IS NOT NULL,
           coalesce(dup.status, coalesce(e.it->>'status', 'delivered')::message_status), coalesce(dup.conflict, false)
      FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, ord)
      LEFT JOIN LATERAL (
        SELECT m.id, m.status,
               e.it->>'idempotency_key' IS NOT NULL
                 AND m.source_fingerprint IS DISTINCT FROM decode(e.it->>'source_fingerprint', 'hex') AS conflict
          FROM message_dedupe d
          JOIN message m ON m.id = d.message_id AND m.to_agent_id = d.to_agent_id
         WHERE d.to_agent_id = e.it->>'to_agent_id' AND d.key = keys[e.ord]
           AND NOT (mids[e.ord] = ANY(claimed))) dup ON true
     ORDER BY e.ord;
END $$;
