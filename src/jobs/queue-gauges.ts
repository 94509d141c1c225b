// Queue gauges read from the database on a schedule: the depth of the deepest
// inboxes (top agents only, so the agent label stays bounded however many agents
// there are), the whole queue by status, and the age of the oldest deliverable
// message. Read-only statements, so every instance may run it at once; each
// instance then reports the same values (dashboards take max() across instances).
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { toAdmpError } from '../errors.js';
import type { Housekeeping } from '../mailbox/housekeeping.js';
import { startPeriodic, type Job } from './periodic.js';
import type { StorageOutage } from '../storage-outage.js';

/** How many agents get an admp_inbox_depth series. */
export const TOP_AGENTS = 50;

const WAITING = ['queued', 'delivered', 'leased'] as const;

export async function refreshQueueGauges(
  housekeeping: Housekeeping,
  metrics: Metrics,
  topAgents = TOP_AGENTS,
): Promise<void> {
  const stats = await housekeeping.stats(topAgents);
  // Reset first: an agent that left the top list must not keep its last value.
  metrics.inboxDepth.reset();
  for (const r of stats.deepest) metrics.inboxDepth.set({ agent: r.agent }, r.n);
  for (const status of WAITING)
    metrics.queueMessages.set({ status }, stats.byStatus.find((r) => r.status === status)?.n ?? 0);
  metrics.oldestDeliverableSeconds.set(Math.max(0, stats.oldestDeliverableSec ?? 0));
}

export function startQueueGauges(
  housekeeping: Housekeeping,
  metrics: Metrics,
  log: Logger,
  intervalMs: number,
  outage?: StorageOutage,
): Job {
  const run = async () => {
    try {
      await refreshQueueGauges(housekeeping, metrics);
      metrics.dbUp.set(1);
      metrics.jobRuns.inc({ task: 'inbox_depth', outcome: 'ok' });
      outage?.succeeded();
    } catch (err) {
      metrics.jobRuns.inc({ task: 'inbox_depth', outcome: 'error' });
      if (toAdmpError(err).code === 'storage_unavailable') {
        metrics.dbUp.set(0);
        metrics.dbErrors.inc();
      }
      if (!outage?.failed(err, 'inbox_depth'))
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
