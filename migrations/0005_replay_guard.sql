-- 0005_replay_guard: single-use keys remembered for as long as a replay could be accepted.
-- HMAC requests carry a nonce that is bound into the MAC; the first request with a given
-- (agent, nonce) inserts its row, a replay inside the window finds it and is refused.
-- Rows are swept once expired (jobs/sweeper). The primary key is the whole key, so on
-- Citus the table can be distributed by `key`.
CREATE TABLE IF NOT EXISTS replay_guard (
  scope      text NOT NULL,
  key        text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS replay_guard_expires ON replay_guard (expires_at);
