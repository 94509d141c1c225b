-- 0010_retention: finished messages are removed in small batches once the retention
-- period has passed (src/db/retention.ts): an acked message counted from its ack, a dead
-- letter from its expiry (it died then or earlier), so a dead letter stays at least that
-- long for inspection and redrive. This partial index finds them oldest first without
-- reading the live queue. An ack already writes a new entry in every index of message
-- (a status change is never a HOT update), so this adds one more, on the right edge of
-- the tree (acked_at rises with time).
-- IF NOT EXISTS: safe to run twice; valid on Citus (created on every shard).
CREATE INDEX IF NOT EXISTS message_finished
  ON message ((coalesce(acked_at, expires_at))) WHERE status IN ('acked', 'dead');
