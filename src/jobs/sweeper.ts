// Background sweep of expired leases and TTLs. Runs in every instance; the
// statements are safe to run concurrently (SKIP LOCKED, conditions re-checked
// under the row lock), so no leader election is needed.
import type pg from 'pg';
import type { Logger } from '../log.js';
import { sweepExpired } from '../db/messages.js';

export interface Job { stop(): Promise<void> }

export function startSweeper(pool: pg.Pool, log: Logger, intervalMs: number, maxAttempts: number): Job {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const tick = async () => {
    try {
      // Keep sweeping while full batches come back, so a backlog drains quickly.
      for (;;) {
        const r = await sweepExpired(pool, maxAttempts);
        const dead = r.dead.reduce((n, d) => n + d.n, 0);
        if (r.returned > 0 || dead > 0) log.info({ event: 'sweep', returned: r.returned, dead: r.dead }, 'expired leases swept');
        if (r.returned + dead < 1000 || stopped) break;
      }
    } catch (err) {
      log.warn({ err, event: 'sweep' }, 'sweep failed; will retry');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => { running = tick().finally(schedule); }, intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
