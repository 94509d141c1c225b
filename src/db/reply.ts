// A reply: the original is locked, the reply enqueued in the same transaction, and
// the original marked answered (and acked when the reply carries its lease).
import type pg from 'pg';
import { AdmpError } from '../errors.js';
import type { MessageRow } from './message-row.js';

/** Locks the original of a reply (it must be in the caller's inbox). */
export async function lockForReply(client: pg.PoolClient, id: string, agentId: string): Promise<MessageRow> {
  const { rows } = await client.query<MessageRow>('SELECT * FROM message WHERE id = $1 FOR UPDATE', [id]);
  const row = rows[0];
  if (!row) throw new AdmpError('not_found', `no message ${id}`);
  if (row.to_agent_id !== agentId) throw new AdmpError('forbidden', `message ${id} is not in your inbox`);
  return row;
}

export async function recordReply(
  client: pg.PoolClient,
  original: MessageRow,
  replyId: string,
  leaseId: string | undefined,
): Promise<void> {
  const { rowCount } = await client.query(
    `UPDATE message SET reply = $3::uuid,
            status = CASE WHEN $4::uuid IS NOT NULL THEN 'acked'::message_status ELSE status END,
            acked_at = CASE WHEN $4::uuid IS NOT NULL THEN now() ELSE acked_at END,
            lease_until = CASE WHEN $4::uuid IS NOT NULL THEN NULL ELSE lease_until END,
            delivery_log = delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'replied', 'reply', $3::text))
                           || CASE WHEN $4::uuid IS NOT NULL THEN jsonb_build_array(jsonb_build_object('at', now(), 'event', 'acked')) ELSE '[]'::jsonb END
      WHERE id = $1 AND to_agent_id = $2
        AND ($4::uuid IS NULL OR (lease_id = $4::uuid AND status IN ('leased', 'delivered')))`,
    [original.id, original.to_agent_id, replyId, leaseId ?? null],
  );
  if (rowCount === 0)
    throw new AdmpError('lease_conflict', `lease ${leaseId} is no longer current for message ${original.id}`);
}
