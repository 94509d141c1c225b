// The queue's background upkeep, for the periodic jobs: expired leases and TTLs
// swept, old request nonces, idle rate quota keys and refused-mail log rows dropped, finished messages past
// retention removed, and the statistics the gauges show.
import type pg from 'pg';
import { sweepExpired } from '../db/sweeps.js';
import { queueStats, type QueueStats } from '../db/queue-stats.js';
import { sweepReplayGuard } from '../db/replay-guard.js';
import { sweepQuotas } from '../db/rate-quota.js';
import { pruneRefusals } from '../db/refusals.js';
import { removeFinished, type Removed } from '../db/retention.js';
import { bounceTagLifetimeSec, returnPathMaxAgeSec } from '../core/bounce-tag.js';
import type { Config } from '../config.js';

export type { QueueStats, Removed };

export interface Housekeeping {
  /** One sweep batch: leases returned to their inbox, messages gone dead by reason. */
  sweep(): Promise<{ returned: number; dead: { reason: string; n: number }[] }>;
  stats(topAgents: number): Promise<QueueStats>;
  /** Forgets request nonces whose window has passed. */
  sweepReplayGuard(): Promise<void>;
  /** Forgets rate quota keys back at rest (their next message would start afresh anyway). */
  sweepRateQuotas(): Promise<void>;
  /** Keeps the refused-mail log to its last 10,000 rows of 7 days (at most once a minute). */
  pruneRefusals(): Promise<void>;
  /**
   * One retention batch: finished messages older than `olderThanSec`, with their dedupe keys;
   * an outbound message not before its bounce tag has expired.
   */
  removeFinished(olderThanSec: number, batch: number): Promise<Removed>;
}

const REFUSALS_KEPT = 10_000;
const REFUSALS_DAYS = 7;
const PRUNE_EVERY_MS = 60_000;

export function createHousekeeping(
  pool: pg.Pool,
  config: Pick<Config, 'maxAttempts' | 'outboundDeadlineSec'>,
): Housekeeping {
  const { maxAttempts } = config;
  const returnPathSec = bounceTagLifetimeSec(returnPathMaxAgeSec(config.outboundDeadlineSec));
  let prunedAt = 0;
  return {
    sweep: () => sweepExpired(pool, maxAttempts),
    stats: (topAgents) => queueStats(pool, topAgents),
    sweepReplayGuard: async () => void (await sweepReplayGuard(pool)),
    sweepRateQuotas: async () => void (await sweepQuotas(pool, Date.now() * 1000)),
    async pruneRefusals() {
      if (Date.now() - prunedAt < PRUNE_EVERY_MS) return;
      prunedAt = Date.now();
      await pruneRefusals(pool, REFUSALS_KEPT, REFUSALS_DAYS);
    },
    removeFinished: (olderThanSec, batch) => removeFinished(pool, { olderThanSec, returnPathSec }, batch),
  };
}
