-- 0012_search_indexes: the admin search keeps only the indexes that pay for themselves.
-- A status change is never a HOT update (status is in the claim indexes' predicates),
-- so every full index on message gets a new entry on each send, lease and ack: the six
-- search indexes of 0006 cost about a fifth of HTTP send and of pull+ack throughput.
-- Status and channel have a handful of values each: a search on them walks the time
-- index (message_search_time) newest first and stops after one page, which is quick
-- whenever the value is common. The rare statuses get a partial index that rows enter
-- at most once and that the delivered → leased → acked path never touches.
-- IF EXISTS / IF NOT EXISTS: safe to run twice; valid on Citus (run on every shard).
DROP INDEX IF EXISTS message_search_status;
DROP INDEX IF EXISTS message_search_channel;
CREATE INDEX IF NOT EXISTS message_search_rare_status
  ON message (created_at) WHERE status IN ('queued', 'failed', 'dead');
