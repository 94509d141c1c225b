-- 0002_policy: delivery policy rules managed at run time (`admp policy add`), applied
-- after the rules of the policy YAML file, first match wins (docs/policy.md).
CREATE TABLE IF NOT EXISTS policy_rule (
  id         bigserial PRIMARY KEY,
  from_glob  text NOT NULL CHECK (from_glob <> ''),
  to_glob    text NOT NULL CHECK (to_glob <> ''),
  types      text[] NOT NULL DEFAULT '{}',
  subject    text,
  max_bytes  integer CHECK (max_bytes > 0),
  action     text NOT NULL CHECK (action IN ('allow', 'deny')),
  created_at timestamptz NOT NULL DEFAULT now()
);
