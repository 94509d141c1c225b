// Background sweep of expired leases and TTLs. Runs in every instance; the
// statements are safe to run concurrently (SKIP LOCKED, conditions re-checked
// under the row lock), so no leader election is needed.
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Housekeeping } from '../mailbox/housekeeping.js';
import { toAdmpError } from '../errors.js';
import { startPeriodic, type Job } from './periodic.js';
import type { StorageOutage } from '../storage-outage.js';

export type { Job } from './periodic.js';

export function startSweeper(
  housekeeping: Housekeeping,
  log: Logger,
  intervalMs: number,
  metrics?: Metrics,
  outage?: StorageOutage,
): Job {
  return startPeriodic(intervalMs, async (stopped) => {
    try {
      // Keep sweeping while full batches come back, so a backlog drains quickly.
      for (;;) {
        const r = await housekeeping.sweep();
        const dead = r.dead.reduce((n, d) => n + d.n, 0);
        metrics?.leaseExpired.inc(r.returned);
        for (const d of r.dead) metrics?.dead.inc({ reason: d.reason }, d.n);
        if (r.returned > 0 || dead > 0)
          log.info({ event: 'sweep', returned: r.returned, dead: r.dead }, 'expired leases swept');
        if (r.returned + dead < 1000 || stopped()) break;
      }
      await housekeeping.sweepReplayGuard();
      await housekeeping.sweepRateQuotas();
      await housekeeping.pruneRefusals();
      metrics?.jobRuns.inc({ task: 'sweep', outcome: 'ok' });
      outage?.succeeded();
    } catch (err) {
      metrics?.jobRuns.inc({ task: 'sweep', outcome: 'error' });
      if (toAdmpError(err).code === 'storage_unavailable') metrics?.dbErrors.inc();
      // A storage fault is logged once per outage (src/ops/storage-outage.ts); anything else each time.
      if (!outage?.failed(err, 'sweep')) log.warn({ err, event: 'sweep' }, 'sweep failed; will retry');
    }
  });
}
