-- 0008_server_secret: secrets every instance shares and no client ever sees, made once
-- (src/db/server-secret.ts): the key of the bounce tags on our return path.
CREATE TABLE IF NOT EXISTS server_secret (
  name       text PRIMARY KEY,
  secret     bytea NOT NULL CHECK (octet_length(secret) >= 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
