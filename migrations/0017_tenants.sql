-- 0017_tenants: tenant subdomains and address tokens (src/core/domains.ts).
-- A tenant is one subdomain under a wildcard of ADMP_DOMAINS (`acme.inbound.example.com`
-- under `*.inbound.example.com`) with agents of its own. An agent's id is its inbox key
-- (message.to_agent_id): in a plain domain it stays the local part, unique across those
-- domains as before (so existing installs change nothing); in a tenant's subdomain it is
-- the whole address, so `bob` may exist in every tenant. The message table is untouched.
-- Safe twice, and valid on Citus: both new tables lack to_agent_id, so they become reference
-- tables like agent (src/db/migrate.ts does so on a database already distributed).

CREATE TABLE IF NOT EXISTS tenant (
  domain     text PRIMARY KEY CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Address tokens: `t-<32 hex>@<the agent's domain>` reaches the agent without naming it.
-- Kept in the clear: an address is handed to correspondents, it is not a credential (a
-- sender still needs a signature and an admitting policy). Revoked rows stay, so a
-- revoked address is told apart from one never issued (550 5.1.6 rather than 5.1.1).
CREATE TABLE IF NOT EXISTS address_token (
  token      text PRIMARY KEY CHECK (token ~ '^t-[0-9a-f]{32}$'),
  agent_id   text NOT NULL REFERENCES agent (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS address_token_agent ON address_token (agent_id);

-- No foreign key from agent to tenant: Admin.removeTenant refuses while agents remain,
-- holding the tenant row locked as agent creation does (src/db/tenants.ts).
ALTER TABLE agent DROP CONSTRAINT IF EXISTS agent_id_check;
ALTER TABLE agent ADD CONSTRAINT agent_id_check CHECK (
  id ~ '^[a-z0-9][a-z0-9._-]{0,63}(@.+)?$'
  AND (position('@' in id) = 0 OR id = split_part(id, '@', 1) || '@' || domain));
