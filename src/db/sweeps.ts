// Expired leases and TTLs.
import type { Queryable } from './pool.js';
import type { MessageStatus } from './message-row.js';

/**
 * Returns expired leases to the inbox, or to `dead` once attempts are spent or the
 * TTL has passed, and kills unleased messages whose TTL passed. Safe to run from
 * several instances at once: each statement locks only the rows it changes
 * (SKIP LOCKED) and re-checks the condition under the lock.
 */
export async function sweepExpired(
  db: Queryable,
  maxAttempts: number,
  batch = 1000,
): Promise<{ returned: number; dead: { reason: string; n: number }[] }> {
  const leases = await db.query<{ to_agent_id: string; status: MessageStatus; reason: string | null }>(
    `WITH due AS (
       SELECT id, to_agent_id FROM message WHERE status = 'leased' AND lease_until < now()
        ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
     decided AS (
       SELECT m.id, m.to_agent_id,
              CASE WHEN m.expires_at <= now() THEN 'ttl_expired' WHEN m.attempts >= $1 THEN 'max_attempts' END AS reason
         FROM message m JOIN due USING (id, to_agent_id))
     UPDATE message m
        SET status = CASE WHEN d.reason IS NULL THEN 'delivered'::message_status ELSE 'dead' END,
            lease_until = NULL,
            delivery_log = m.delivery_log || jsonb_build_array(CASE WHEN d.reason IS NULL
              THEN jsonb_build_object('at', now(), 'event', 'lease_expired', 'attempts', m.attempts)
              ELSE jsonb_build_object('at', now(), 'event', 'dead', 'reason', d.reason, 'attempts', m.attempts) END)
       FROM decided d
      WHERE m.id = d.id AND m.to_agent_id = d.to_agent_id
     RETURNING m.to_agent_id, m.status, d.reason`,
    [maxAttempts, batch],
  );
  const ttl = await db.query<{ n: number }>(
    `WITH due AS (
       SELECT id, to_agent_id FROM message WHERE status IN ('queued', 'delivered') AND expires_at <= now()
        LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE message m SET status = 'dead',
            delivery_log = m.delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'dead', 'reason', 'ttl_expired'))
       FROM due WHERE m.id = due.id AND m.to_agent_id = due.to_agent_id
     RETURNING 1 AS n`,
    [batch],
  );
  const returnedAgents = new Set(leases.rows.filter((r) => r.status === 'delivered').map((r) => r.to_agent_id));
  for (const agent of returnedAgents) await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agent]);
  const deadBy = new Map<string, number>();
  for (const r of leases.rows) if (r.reason) deadBy.set(r.reason, (deadBy.get(r.reason) ?? 0) + 1);
  if (ttl.rowCount) deadBy.set('ttl_expired', (deadBy.get('ttl_expired') ?? 0) + ttl.rowCount);
  return {
    returned: leases.rows.filter((r) => r.status === 'delivered').length,
    dead: [...deadBy].map(([reason, n]) => ({ reason, n })),
  };
}
