// A reply: the original is locked, the reply enqueued in the same transaction, and
// the original marked answered (and acked when the reply carries its lease).
import type pg from 'pg';
import { AdmpError } from '../errors.js';
import type { MessageRow } from './message-row.js';
import { LOG } from './delivery-log.js';

/**
 * Locks the original of a reply (it must be in the caller's inbox). The lock names the
 * inbox, so on Citus it is a single-shard FOR UPDATE; only a miss reads by id alone.
 */
export async function lockForReply(client: pg.PoolClient, id: string, agentId: string): Promise<MessageRow> {
  const { rows } = await client.query<MessageRow>(
    'SELECT * FROM message WHERE to_agent_id = $2 AND id = $1 FOR UPDATE',
    [id, agentId],
  );
  if (rows[0]) return rows[0];
  const other = await client.query('SELECT 1 FROM message WHERE id = $1', [id]);
  if (other.rowCount === 0) throw new AdmpError('not_found', `no message ${id}`);
  throw new AdmpError('forbidden', `message ${id} is not in your inbox`);
}

/**
 * Marks the original answered; with the original's lease, acks it too. Two statements
 * rather than CASEs on the lease: Citus refuses now() inside CASE.
 */
export async function recordReply(
  client: pg.PoolClient,
  original: MessageRow,
  replyId: string,
  leaseId: string | undefined,
): Promise<void> {
  const replied = LOG('replied', "jsonb_build_object('reply', $3::text)");
  const { rowCount } = leaseId
    ? await client.query(
        `UPDATE message SET reply = $3::uuid, status = 'acked', acked_at = now(), lease_until = NULL,
                delivery_log = ${replied} || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'acked'))
          WHERE id = $1 AND to_agent_id = $2 AND lease_id = $4::uuid AND status IN ('leased', 'delivered')`,
        [original.id, original.to_agent_id, replyId, leaseId],
      )
    : await client.query(
        `UPDATE message SET reply = $3::uuid, delivery_log = ${replied} WHERE id = $1 AND to_agent_id = $2`,
        [original.id, original.to_agent_id, replyId],
      );
  if (rowCount === 0)
    throw new AdmpError('lease_conflict', `lease ${leaseId} is no longer current for message ${original.id}`);
}
