-- 0015_rate_quota: rate quotas (docs/policy.md). A policy rule of action `limit` carries
-- a quota (per what, how many per window, burst) and never decides admission; every
-- `limit` rule that matches a message counts it. Safe to run twice.
ALTER TABLE policy_rule ADD COLUMN IF NOT EXISTS quota_per text
  CHECK (quota_per IN ('sender', 'sender_domain', 'recipient', 'pair', 'correlation'));
ALTER TABLE policy_rule ADD COLUMN IF NOT EXISTS quota_limit integer CHECK (quota_limit > 0);
ALTER TABLE policy_rule ADD COLUMN IF NOT EXISTS quota_window_sec integer CHECK (quota_window_sec > 0);
ALTER TABLE policy_rule ADD COLUMN IF NOT EXISTS quota_burst integer CHECK (quota_burst > 0);
ALTER TABLE policy_rule DROP CONSTRAINT IF EXISTS policy_rule_action_check;
ALTER TABLE policy_rule ADD CONSTRAINT policy_rule_action_check CHECK (action IN ('allow', 'deny', 'limit'));
-- A limit rule has its quota; an allow or deny rule has none.
ALTER TABLE policy_rule DROP CONSTRAINT IF EXISTS policy_rule_quota_check;
ALTER TABLE policy_rule ADD CONSTRAINT policy_rule_quota_check CHECK (
  (action = 'limit') = (quota_per IS NOT NULL AND quota_limit IS NOT NULL AND quota_window_sec IS NOT NULL)
  AND (quota_burst IS NULL OR action = 'limit'));

-- One row per counted key: the generic cell rate algorithm's theoretical arrival time
-- (microseconds since the epoch). A row whose tat_us is past is as good as none (swept).
-- Shared by every instance, kept across restarts. On Citus it stays a local table of the
-- coordinator (src/db/citus.ts): every instance connects there, it is never joined with
-- the queue, and as a reference table every count would be written to every node.
CREATE TABLE IF NOT EXISTS rate_quota (
  key         text PRIMARY KEY,
  tat_us      bigint NOT NULL,
  interval_us bigint NOT NULL CHECK (interval_us > 0),
  burst       integer NOT NULL CHECK (burst > 0),
  -- How many of the last statement's messages were admitted (read back by RETURNING).
  granted     integer NOT NULL CHECK (granted >= 0)
);
