-- 0014_webhook_endpoint: where the push worker delivers an agent's messages (src/webhooks/).
-- The HMAC secret (Standard Webhooks `v1`) must be kept in the clear: the server computes
-- the MAC. The optional Ed25519 seed signs `v1a`; the agent keeps only the public half.
-- A 410 Gone answer, or a URL that resolves to a refused address, sets disabled_at.
-- No to_agent_id column: on Citus this small table becomes a reference table (docs/scaling.md),
-- like `agent`, which it references. IF NOT EXISTS: safe to run twice.
CREATE TABLE IF NOT EXISTS webhook_endpoint (
  id              uuid PRIMARY KEY,
  agent_id        text NOT NULL REFERENCES agent (id) ON DELETE CASCADE,
  url             text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
  secret          bytea NOT NULL CHECK (octet_length(secret) BETWEEN 24 AND 64),
  ed25519_seed    bytea CHECK (octet_length(ed25519_seed) = 32),
  types           text[] CHECK (cardinality(types) BETWEEN 1 AND 50),
  disabled_at     timestamptz,
  disabled_reason text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (agent_id, url)
);
