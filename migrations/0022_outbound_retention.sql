-- 0022_outbound_retention: retention (src/db/retention.ts) removes outbound history too.
-- An outbound message ends `sent` or `failed` (or `dead`, its TTL run out while queued),
-- and those were kept for ever. It is counted from its last attempt: the claim that made
-- that attempt set next_attempt_at past the attempt's end, and the attempt's bounce tag
-- was made within it, so a delivery report is still taken until a fixed time after
-- next_attempt_at; retention keeps the message at least that long as well. Every other
-- finished message is counted as before (0010): an acked one from its ack, a dead letter
-- from its expiry. An outbound message is one addressed outside (to_agent_id holds the
-- whole address, an agent id has no '@').
-- The new index replaces message_finished (0010) under a new name, so that running this
-- twice builds it once. The statuses it adds are outbound mail's final ones, which no claim,
-- ack or sweep of the inbound queue touches, so the queue writes no more index entries than
-- before. Valid on Citus (created on every shard).
CREATE INDEX IF NOT EXISTS message_finished_at
  ON message ((CASE WHEN position('@' in to_agent_id) > 0 THEN next_attempt_at ELSE coalesce(acked_at, expires_at) END))
  WHERE status IN ('acked', 'dead', 'sent', 'failed');
DROP INDEX IF EXISTS message_finished;
