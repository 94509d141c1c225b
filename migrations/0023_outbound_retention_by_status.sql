-- 0023_outbound_retention_by_status: retention tells outbound mail by its status, not by the
-- '@' in to_agent_id (0022): a tenant's agent is also stored as its whole address (0017),
-- so 0022's expression counted a tenant's acked messages and dead letters from their
-- creation, as if they were outbound. `sent` and `failed` are outbound mail's alone (the
-- outbound worker and delivery reports set them, nothing else does); they are counted from
-- the last attempt (next_attempt_at, 0022 says why), every other finished message as in
-- 0010. An outbound message that died of its TTL while queued is a dead letter like any other.
-- A new name, so that running this twice builds it once. Valid on Citus (created on every shard).
CREATE INDEX IF NOT EXISTS message_retention
  ON message ((CASE WHEN status IN ('sent', 'failed') THEN next_attempt_at ELSE coalesce(acked_at, expires_at) END))
  WHERE status IN ('acked', 'dead', 'sent', 'failed');
DROP INDEX IF EXISTS message_finished_at;
