// Expired leases and TTLs.
import type { Queryable } from './pool.js';
import type { MessageStatus } from './message-row.js';

/**
 * An outbound message the outbound worker is submitting now (src/db/outbound.ts: a claim
 * sets lease_id and pushes next_attempt_at past the attempt's end; the outcome clears
 * lease_id). Its TTL waits for the outcome: killed meanwhile, a message the relay then
 * accepted would stay `dead`, as the outcome moves only a `queued` one. A claim whose
 * worker died runs out at next_attempt_at, and the message goes then.
 */
const inFlight = (now: string): string => `(status = 'queued' AND lease_id IS NOT NULL AND next_attempt_at > ${now})`;

/**
 * Returns expired leases to the inbox, or to `dead` once attempts are spent or the
 * TTL has passed, and kills unleased messages whose TTL passed. First finds the inboxes
 * with work (a read over the whole table, on Citus over every shard), then works one
 * inbox at a time: each statement names to_agent_id, so on Citus it runs on one shard,
 * where FOR UPDATE SKIP LOCKED is supported. Safe to run from several instances at once:
 * each statement locks only the rows it changes (SKIP LOCKED) and re-checks the
 * condition under the lock. The database's time is read once and passed in, as Citus
 * refuses now() inside CASE.
 */
export async function sweepExpired(
  db: Queryable,
  maxAttempts: number,
  batch = 1000,
): Promise<{ returned: number; dead: { reason: string; n: number }[] }> {
  const found = await db.query<{ now: Date; leased: string[]; expired: string[] }>(
    `SELECT now() AS now,
            ARRAY(SELECT DISTINCT to_agent_id FROM message WHERE status = 'leased' AND lease_until < now() LIMIT $1) AS leased,
            ARRAY(SELECT DISTINCT to_agent_id FROM message
                   WHERE status IN ('queued', 'delivered') AND expires_at <= now() AND NOT ${inFlight('now()')}
                   LIMIT $1) AS expired`,
    [batch],
  );
  const { now, leased, expired } = found.rows[0]!;
  let returned = 0;
  const deadBy = new Map<string, number>();
  const dead = (reason: string, n: number) => deadBy.set(reason, (deadBy.get(reason) ?? 0) + n);
  for (const agent of leased) {
    const { rows } = await db.query<{ status: MessageStatus; reason: string | null }>(
      `WITH due AS (
         SELECT id FROM message WHERE to_agent_id = $1 AND status = 'leased' AND lease_until < $3
          ORDER BY lease_until LIMIT $4 FOR UPDATE SKIP LOCKED)
       UPDATE message m
          SET status = CASE WHEN m.expires_at <= $3 OR m.attempts >= $2 THEN 'dead'::message_status ELSE 'delivered' END,
              lease_until = NULL,
              delivery_log = m.delivery_log || (jsonb_build_object('at', $3::timestamptz) || jsonb_set(
                CASE WHEN m.expires_at <= $3 THEN '{"event": "dead", "reason": "ttl_expired"}'::jsonb
                     WHEN m.attempts >= $2 THEN '{"event": "dead", "reason": "max_attempts"}'
                     ELSE '{"event": "lease_expired"}' END, '{attempts}', m.attempts::text::jsonb))
         FROM due
        WHERE m.to_agent_id = $1 AND m.id = due.id
       RETURNING m.status, CASE WHEN m.expires_at <= $3 THEN 'ttl_expired' WHEN m.attempts >= $2 THEN 'max_attempts' END AS reason`,
      [agent, maxAttempts, now, batch],
    );
    const back = rows.filter((r) => r.status === 'delivered').length;
    returned += back;
    for (const r of rows) if (r.status === 'dead') dead(r.reason!, 1);
    if (back > 0) await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agent]);
  }
  for (const agent of expired) {
    const { rowCount } = await db.query(
      `WITH due AS (
         SELECT id FROM message WHERE to_agent_id = $1 AND status IN ('queued', 'delivered') AND expires_at <= $2
            AND NOT ${inFlight('$2')}
          LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE message m SET status = 'dead',
              delivery_log = m.delivery_log || jsonb_build_object('at', $2::timestamptz, 'event', 'dead', 'reason', 'ttl_expired')
         FROM due WHERE m.to_agent_id = $1 AND m.id = due.id`,
      [agent, now, batch],
    );
    if (rowCount) dead('ttl_expired', rowCount);
  }
  return { returned, dead: [...deadBy].map(([reason, n]) => ({ reason, n })) };
}
