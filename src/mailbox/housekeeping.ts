// The queue's background upkeep, for the periodic jobs: expired leases and TTLs
// swept, and the statistics the gauges show.
import type pg from 'pg';
import { sweepExpired } from '../db/sweeps.js';
import { queueStats, type QueueStats } from '../db/queue-stats.js';
import { sweepReplayGuard } from '../db/replay-guard.js';

export type { QueueStats };

export interface Housekeeping {
  /** One sweep batch: leases returned to their inbox, messages gone dead by reason. */
  sweep(): Promise<{ returned: number; dead: { reason: string; n: number }[] }>;
  stats(topAgents: number): Promise<QueueStats>;
  /** Forgets request nonces whose window has passed. */
  sweepReplayGuard(): Promise<void>;
}

export function createHousekeeping(pool: pg.Pool, maxAttempts: number): Housekeeping {
  return {
    sweep: () => sweepExpired(pool, maxAttempts),
    stats: (topAgents) => queueStats(pool, topAgents),
    sweepReplayGuard: async () => void (await sweepReplayGuard(pool)),
  };
}
