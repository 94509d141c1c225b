// Queue gauges read from the database on a schedule: the depth of the deepest
// inboxes (top agents only, so the agent label stays bounded however many agents
// there are), the whole queue by status, and the age of the oldest deliverable
// message. Read-only statements, so every instance may run it at once; each
// instance then reports the same values (dashboards take max() across instances).
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { toAdmpError } from '../errors.js';
import { startPeriodic, type Job } from '../jobs/periodic.js';

/** How many agents get an admp_inbox_depth series. */
export const TOP_AGENTS = 50;

const WAITING = ['queued', 'delivered', 'leased'] as const;

export async function refreshQueueGauges(pool: pg.Pool, metrics: Metrics, topAgents = TOP_AGENTS): Promise<void> {
  // The partial indexes message_inbox and message_leases cover the first two.
  const depth = await pool.query<{ agent: string; n: number }>(
    `SELECT to_agent_id AS agent, count(*)::int AS n FROM message WHERE status IN ('delivered', 'leased')
      GROUP BY to_agent_id ORDER BY n DESC, to_agent_id LIMIT $1`,
    [topAgents],
  );
  const byStatus = await pool.query<{ status: string; n: number }>(
    `SELECT status::text, count(*)::int AS n FROM message WHERE status IN ('queued', 'delivered', 'leased') GROUP BY status`,
  );
  const oldest = await pool.query<{ age: number | null }>(
    `SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM message WHERE status = 'delivered' AND visible_at <= now()`,
  );
  // Reset first: an agent that left the top list must not keep its last value.
  metrics.inboxDepth.reset();
  for (const r of depth.rows) metrics.inboxDepth.set({ agent: r.agent }, r.n);
  for (const status of WAITING)
    metrics.queueMessages.set({ status }, byStatus.rows.find((r) => r.status === status)?.n ?? 0);
  metrics.oldestDeliverableSeconds.set(Math.max(0, oldest.rows[0]?.age ?? 0));
}

export function startInboxDepthRefresh(pool: pg.Pool, metrics: Metrics, log: Logger, intervalMs: number): Job {
  const run = async () => {
    try {
      await refreshQueueGauges(pool, metrics);
      metrics.dbUp.set(1);
      metrics.jobRuns.inc({ task: 'inbox_depth', outcome: 'ok' });
    } catch (err) {
      metrics.jobRuns.inc({ task: 'inbox_depth', outcome: 'error' });
      if (toAdmpError(err).code === 'storage_unavailable') {
        metrics.dbUp.set(0);
        metrics.dbErrors.inc();
      }
      log.warn({ err, event: 'inbox_depth' }, 'queue gauge refresh failed; will retry');
    }
  };
  // First values at start, not one interval later.
  const first = run();
  const job = startPeriodic(intervalMs, run);
  return {
    async stop() {
      await first;
      await job.stop();
    },
  };
}
