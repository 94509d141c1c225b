// Background retention (ADMP_RETENTION_DAYS; 0 turns it off). Runs in every instance:
// concurrent runs delete disjoint rows or find them gone, which is harmless. Each batch
// is its own short transaction; a pause between batches leaves the database to the queue.
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Housekeeping } from '../mailbox/housekeeping.js';
import { toAdmpError } from '../errors.js';
import { startPeriodic, type Job } from './periodic.js';

export interface RetentionOptions {
  days: number;
  batch: number;
  intervalMs?: number;
  pauseMs?: number;
}

export function startRetention(
  housekeeping: Housekeeping,
  log: Logger,
  opts: RetentionOptions,
  metrics?: Metrics,
): Job | undefined {
  if (opts.days === 0) return undefined;
  const pauseMs = opts.pauseMs ?? 100;
  return startPeriodic(opts.intervalMs ?? 60_000, async (stopped) => {
    try {
      let messages = 0;
      let dedupeKeys = 0;
      // Keep going while full batches come back, so a backlog of history drains.
      for (;;) {
        const r = await housekeeping.removeFinished(opts.days * 86_400, opts.batch);
        messages += r.messages;
        dedupeKeys += r.dedupeKeys;
        metrics?.retentionRemoved.inc({ kind: 'message' }, r.messages);
        metrics?.retentionRemoved.inc({ kind: 'dedupe_key' }, r.dedupeKeys);
        if (r.messages < opts.batch || stopped()) break;
        await new Promise((ok) => setTimeout(ok, pauseMs));
      }
      if (messages > 0)
        log.info({ event: 'retention', messages, dedupe_keys: dedupeKeys }, 'finished messages removed');
      metrics?.jobRuns.inc({ task: 'retention', outcome: 'ok' });
    } catch (err) {
      metrics?.jobRuns.inc({ task: 'retention', outcome: 'error' });
      if (toAdmpError(err).code === 'storage_unavailable') metrics?.dbErrors.inc();
      log.warn({ err, event: 'retention' }, 'retention failed; will retry');
    }
  });
}
