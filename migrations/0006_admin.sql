-- 0006_admin: operator access (admin tokens), the message-search indexes of the admin
-- API, and the log of refused ingress mail. Plain DDL with IF NOT EXISTS: safe twice.

-- Admin tokens are stored as SHA-256 hashes only, like agent tokens, in a table of
-- their own: an admin token is never an agent credential and the reverse (the two
-- authenticators each read only their own table).
CREATE TABLE IF NOT EXISTS admin_token (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$'),
  token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  read_only   boolean NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Message search (GET /admin/v1/messages): each documented filter has an index whose
-- order is the answer's (newest first), so a page is an index range scan that stops
-- after `limit` rows, whatever the table's size. None is unique, so the table can
-- still be distributed by to_agent_id (docs/scaling.md).
CREATE INDEX IF NOT EXISTS message_search_agent ON message (to_agent_id, created_at);
CREATE INDEX IF NOT EXISTS message_search_sender ON message (from_agent, created_at);
CREATE INDEX IF NOT EXISTS message_search_status ON message (status, created_at);
CREATE INDEX IF NOT EXISTS message_search_channel ON message (channel, created_at);
CREATE INDEX IF NOT EXISTS message_search_time ON message (created_at);
CREATE INDEX IF NOT EXISTS message_search_correlation
  ON message (correlation_id, created_at) WHERE correlation_id IS NOT NULL;

-- Mail the ingress roads refused, with the reason (the console's "recent refusals").
-- A table rather than a per-process ring buffer: every worker process and every
-- instance refuses mail, and the operator wants one list. Pruned by age and count
-- by the sweeper, so a flood of refusals cannot grow it without bound.
CREATE TABLE IF NOT EXISTS ingress_refusal (
  id        bigserial PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  road      text NOT NULL,
  sender    text,
  recipient text,
  code      text NOT NULL,
  reason    text NOT NULL
);
CREATE INDEX IF NOT EXISTS ingress_refusal_at ON ingress_refusal (at);
