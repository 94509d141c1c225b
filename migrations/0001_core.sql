-- 0001_core: agents, credentials, keys, the message queue and its single enqueue path.
-- Every unique index on message includes to_agent_id, so the table can be
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

-- Dedupe keys. An idempotency key is scoped to its sender as well, so one sender
-- cannot suppress another's messages by guessing keys.
CREATE UNIQUE INDEX IF NOT EXISTS message_idempotency
  ON message (to_agent_id, from_agent, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS message_fingerprint
  ON message (to_agent_id, source_fingerprint) WHERE source_fingerprint IS NOT NULL;

-- The claim path: per-agent FIFO over deliverable rows only. A partial index keeps
-- ORDER BY created_at cheap (without it FIFO is ~50x slower, research/perf.md).
CREATE INDEX IF NOT EXISTS message_inbox
  ON message (to_agent_id, created_at, id) WHERE status = 'delivered';
-- Lease reclaim and TTL sweeps.
CREATE INDEX IF NOT EXISTS message_leases ON message (lease_until) WHERE status = 'leased';
CREATE INDEX IF NOT EXISTS message_expiry ON message (expires_at) WHERE status IN ('queued', 'delivered');
CREATE INDEX IF NOT EXISTS message_mail_message_id ON message (mail_message_id) WHERE mail_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS message_correlation ON message (correlation_id) WHERE correlation_id IS NOT NULL;

-- The only way a message row is created, for every channel. Takes a JSON array of
-- messages (so concurrent callers can be batched into one statement and one commit)
-- and returns, in input order, each message's id and whether it was a duplicate.
-- A duplicate (same sender idempotency key, or same source fingerprint, for the same
-- recipient) returns the original row's id; it never creates a second row.
CREATE OR REPLACE FUNCTION enqueue_message(items jsonb)
RETURNS TABLE (idx integer, id uuid, duplicate boolean, status message_status, conflict boolean)
LANGUAGE plpgsql AS $$
DECLARE
  it jsonb;
  i integer := 0;
  new_id uuid;
  fp bytea;
  st message_status;
BEGIN
  IF jsonb_typeof(items) <> 'array' THEN
    RAISE EXCEPTION 'enqueue_message expects a JSON array' USING ERRCODE = '22023';
  END IF;
  FOR it IN SELECT value FROM jsonb_array_elements(items) LOOP
    fp := decode(it->>'source_fingerprint', 'hex');
    st := coalesce(it->>'status', 'delivered')::message_status;
    new_id := NULL;
    INSERT INTO message AS m (id, to_agent_id, channel, from_agent, subject, type, body, headers,
                              correlation_id, idempotency_key, status, ttl_sec, expires_at, delivered_at,
                              in_reply_to, source_fingerprint, auth, mail_message_id, delivery_log)
    VALUES (coalesce((it->>'id')::uuid, gen_random_uuid()), it->>'to_agent_id', (it->>'channel')::message_channel,
            it->>'from_agent', it->>'subject', it->>'type', it->'body', coalesce(it->'headers', '{}'),
            it->>'correlation_id', it->>'idempotency_key', st, (it->>'ttl_sec')::integer,
            now() + make_interval(secs => (it->>'ttl_sec')::integer),
            CASE WHEN st = 'delivered' THEN now() END,
            (it->>'in_reply_to')::uuid, fp, it->'auth', it->>'mail_message_id',
            jsonb_build_array(jsonb_build_object('at', now(), 'event', st, 'channel', it->>'channel')))
    ON CONFLICT DO NOTHING
    RETURNING m.id INTO new_id;

    IF new_id IS NOT NULL THEN
      IF st = 'delivered' THEN
        PERFORM pg_notify('admp_inbox', it->>'to_agent_id');
      ELSIF st = 'queued' THEN
        PERFORM pg_notify('admp_outbound', '');
      END IF;
      RETURN QUERY SELECT i, new_id, false, st, false;
    ELSE
      -- The conflicting row is committed (ON CONFLICT waited for it), so it is visible here.
      RETURN QUERY
        SELECT i, m.id, true, m.status,
               (it ? 'idempotency_key' AND m.idempotency_key = it->>'idempotency_key'
                AND m.source_fingerprint IS DISTINCT FROM fp)
          FROM message m
         WHERE m.to_agent_id = it->>'to_agent_id'
           AND ((m.idempotency_key = it->>'idempotency_key' AND m.from_agent = it->>'from_agent')
                OR m.source_fingerprint = fp)
         ORDER BY (m.idempotency_key = it->>'idempotency_key') DESC NULLS LAST
         LIMIT 1;
    END IF;
    i := i + 1;
  END LOOP;
END $$;
