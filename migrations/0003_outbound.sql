-- 0003_outbound: the outbound mail worker's claim path. A `queued` smtp row waits
-- for the worker until next_attempt_at; a claim pushes next_attempt_at past the
-- relay timeout (so a crashed worker's row is taken again) and sets lease_id as the
-- claim token that the outcome update must present. `attempts` counts submissions.
-- Plain DDL with IF NOT EXISTS: safe to run twice. No unique index is added or changed.
ALTER TABLE message ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz NOT NULL DEFAULT now();

CREATE INDEX IF NOT EXISTS message_outbound
  ON message (next_attempt_at) WHERE status = 'queued' AND channel = 'smtp';
