-- 0009_inbox_order: FIFO from the database. created_at cannot order an inbox: every
-- row of one enqueue batch (one transaction) has the same now(), and rows committed in
-- the same microsecond tie; the claim then fell back to the random uuid. `seq` is one
-- monotonic key: a bigint sequence drawn as each row is inserted, in batch order.
--
-- Written the way Citus accepts it on a distributed, non-empty table (its own hint):
-- the column first, then the default, each in its own statement; the backfill is a
-- plain multi-shard UPDATE.
CREATE SEQUENCE IF NOT EXISTS message_seq AS bigint;
ALTER TABLE message ADD COLUMN IF NOT EXISTS seq bigint;
ALTER TABLE message ALTER COLUMN seq SET DEFAULT nextval('message_seq');
-- Rows from before: numbered by their creation time in microseconds (their order so
-- far), and the sequence continues above them. The epoch is taken of the UTC wall time
-- (the same number): Citus refuses a STABLE function (extract from timestamptz) over a
-- column in an UPDATE, and timezone('UTC', …) and extract from timestamp are IMMUTABLE.
UPDATE message SET seq = (extract(epoch FROM created_at AT TIME ZONE 'UTC') * 1000000)::bigint WHERE seq IS NULL;
SELECT setval('message_seq', greatest(coalesce((SELECT max(seq) FROM message), 0), 1));
ALTER TABLE message ALTER COLUMN seq SET NOT NULL;
-- The claim's index follows its ORDER BY.
DROP INDEX IF EXISTS message_inbox;
CREATE INDEX IF NOT EXISTS message_inbox_seq ON message (to_agent_id, seq) WHERE status = 'delivered';
