// What the log says while the database is away: one line when the first storage fault
// is seen (level error, the first error's message, no stack), one when something works
// again (how long it lasted, how many answers were "try again later", by where). In
// between every request still gets its 503 / 451 4.3.0 and its summary line, but no
// line of its own: an outage under load is one event, not thousands of stack traces.
import { toAdmpError } from './errors.js';
import type { Logger } from './log.js';

/** Where a storage fault was met: a road (http, rspamd, lmtp, smtp) or a background job. */
export type FaultSite = 'http' | 'rspamd' | 'lmtp' | 'smtp' | 'sweep' | 'inbox_depth' | 'webhooks';

export interface StorageOutage {
  /**
   * Records a failure. A storage fault (the database unreachable, too slow or locked)
   * returns true: it is counted, and logged only when it starts an outage. Anything
   * else returns false: the caller logs it as the bug it is.
   */
  failed(err: unknown, site: FaultSite): boolean;
  /** Records that a database round trip worked; ends an outage in progress. */
  succeeded(): void;
  /** True between the first fault and the next success. */
  readonly down: boolean;
}

export function createStorageOutage(log: Logger, now: () => number = Date.now): StorageOutage {
  let outage: { since: number; faults: Partial<Record<FaultSite, number>> } | undefined;
  return {
    get down() {
      return outage !== undefined;
    },
    failed(err, site) {
      const e = toAdmpError(err);
      if (e.code !== 'storage_unavailable' && e.code !== 'timeout') return false;
      if (!outage) {
        outage = { since: now(), faults: {} };
        const cause = err as { message?: unknown; code?: unknown };
        log.error(
          { event: 'storage', state: 'down', site, error: String(cause?.message ?? err), code: cause?.code },
          'message store unavailable: every road answers 503 / 451 4.3.0 (senders retry) until it is back',
        );
      }
      outage.faults[site] = (outage.faults[site] ?? 0) + 1;
      return true;
    },
    succeeded() {
      if (!outage) return;
      const ms = now() - outage.since;
      log.warn(
        { event: 'storage', state: 'up', down_ms: ms, faults: outage.faults },
        `message store back after ${(ms / 1000).toFixed(1)} s`,
      );
      outage = undefined;
    },
  };
}
