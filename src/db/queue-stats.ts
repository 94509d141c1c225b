// Read-only statistics of the whole queue, for the gauges (and the console).
import type { Queryable } from './pool.js';

export interface QueueStats {
  /** The deepest inboxes (delivered + leased), deepest first. */
  readonly deepest: readonly { agent: string; n: number }[];
  /** Waiting messages by status. */
  readonly byStatus: readonly { status: string; n: number }[];
  /** Seconds since the oldest deliverable message was created; null when there is none. */
  readonly oldestDeliverableSec: number | null;
}

export async function queueStats(db: Queryable, topAgents: number): Promise<QueueStats> {
  // The partial indexes message_inbox_seq and message_leases_by_agent cover the first two.
  const depth = await db.query<{ agent: string; n: number }>(
    `SELECT to_agent_id AS agent, count(*)::int AS n FROM message WHERE status IN ('delivered', 'leased')
      GROUP BY to_agent_id ORDER BY n DESC, to_agent_id LIMIT $1`,
    [topAgents],
  );
  const byStatus = await db.query<{ status: string; n: number }>(
    `SELECT status::text, count(*)::int AS n FROM message WHERE status IN ('queued', 'delivered', 'leased') GROUP BY status`,
  );
  const oldest = await db.query<{ age: number | null }>(
    `SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM message WHERE status = 'delivered' AND visible_at <= now()`,
  );
  return { deepest: depth.rows, byStatus: byStatus.rows, oldestDeliverableSec: oldest.rows[0]?.age ?? null };
}
