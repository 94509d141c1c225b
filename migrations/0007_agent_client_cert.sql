-- 0007_agent_client_cert: client certificates an agent is bound to (mutual TLS on the
-- agent API). A bound agent's requests need both its credential and a certificate that
-- chains to ADMP_HTTP_TLS_CLIENT_CA and matches one of its rows. `subject` holds the
-- subject's attributes in canonical form (sorted `TYPE=value`, joined by ", ");
-- `spki` the base64 SHA-256 of the DER SubjectPublicKeyInfo (the HPKP pin-sha256 form,
-- RFC 7469 §2.4).
CREATE TABLE IF NOT EXISTS agent_client_cert (
  agent_id   text NOT NULL REFERENCES agent (id) ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind IN ('subject', 'spki')),
  value      text NOT NULL CHECK (
    (kind = 'spki' AND value ~ '^[A-Za-z0-9+/]{43}=$')
    OR (kind = 'subject' AND length(value) BETWEEN 3 AND 2048 AND value LIKE '%=%')
  ),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agent_id, kind, value)
);
