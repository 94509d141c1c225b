// Rate quotas, enforced: every road (the mail pipeline's check-rate step, HTTP sends and
// replies through the Mailbox) asks `admit` before it stores a message. Counters live in
// PostgreSQL (src/db/rate-quota.ts), shared by every instance and kept across restarts.
// Concurrent callers are gathered into one counting statement while the previous one
// runs, as the enqueue batcher does, so a quota costs one statement per batch rather
// than one round trip per message and key. A message with several quotas is counted by
// each even when another refuses it: conservative, never over the limit.
import type pg from 'pg';
import { AdmpError } from '../errors.js';
import { quotaCharges, hasQuotas, type QuotaCharge, type QuotaSubject } from '../core/rate-quota.js';
import { countQuotas, type QuotaCount } from '../db/rate-quota.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PolicySource } from './store.js';

export type { QuotaSubject };

/** Which road asked, for the metric and the log line. */
export type QuotaScope = 'mail' | 'http';

export interface QuotaGate {
  /** Counts the message against every quota that matches it: undefined when admitted, else the refusal. */
  admit(s: QuotaSubject, scope: QuotaScope): Promise<AdmpError | undefined>;
  /** True when some `limit` rule exists (a caller may skip reading what only a quota needs). */
  active(): Promise<boolean>;
}

/** The charge that refused a message, and its key's tat after the count. */
interface Refused {
  charge: QuotaCharge;
  tatUs: number;
}

interface Pending {
  charges: readonly QuotaCharge[];
  resolve: (refused: Refused | undefined) => void;
  reject: (e: unknown) => void;
}

export interface QuotaGateDeps {
  readonly pool: pg.Pool;
  readonly policy: PolicySource;
  readonly metrics?: Metrics;
  readonly log?: Pick<Logger, 'info'>;
  /** Microseconds since the epoch (tests move time). */
  readonly nowUs?: () => number;
}

/** How long until `c`'s key admits one more, given the tat its count returned. */
export function retryAfterSec(c: QuotaCharge, tatUs: number, nowUs: number): number {
  const waitUs = tatUs + c.intervalUs - c.burst * c.intervalUs - nowUs;
  return Math.max(1, Math.ceil(waitUs / 1e6));
}

export function createQuotaGate(deps: QuotaGateDeps): QuotaGate {
  const nowUs = deps.nowUs ?? (() => Date.now() * 1000);
  let queue: Pending[] = [];
  let inFlight = false;

  async function run(batch: Pending[]): Promise<void> {
    const storeKey = (c: QuotaCharge) => `${c.rule}|${c.key}`;
    const counts = new Map<string, QuotaCount>();
    for (const p of batch)
      for (const c of p.charges) {
        const k = storeKey(c);
        const prev = counts.get(k);
        counts.set(k, { key: k, n: (prev?.n ?? 0) + 1, intervalUs: c.intervalUs, burst: c.burst });
      }
    try {
      const counted = await countQuotas(deps.pool, [...counts.values()], nowUs());
      // The first callers on a key (in arrival order) take what was granted.
      const left = new Map([...counted].map(([k, v]) => [k, v.granted]));
      for (const p of batch) {
        let refused: Refused | undefined;
        for (const c of p.charges) {
          const k = storeKey(c);
          const n = left.get(k) ?? 0;
          if (n > 0) left.set(k, n - 1);
          else refused ??= { charge: c, tatUs: counted.get(k)?.tatUs ?? nowUs() };
        }
        p.resolve(refused);
      }
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  function pump(): void {
    if (inFlight || queue.length === 0) return;
    const batch = queue;
    queue = [];
    inFlight = true;
    void run(batch).finally(() => {
      inFlight = false;
      pump();
    });
  }

  function refusal({ charge: c, tatUs }: Refused, s: QuotaSubject, scope: QuotaScope): AdmpError {
    const retry = retryAfterSec(c, tatUs, nowUs());
    const { limit, window_sec, burst } = c.quota;
    deps.metrics?.rateLimited.inc({ scope, rule: c.rule, window: c.window });
    deps.log?.info(
      {
        event: 'rate_quota',
        scope,
        rule: c.rule,
        key: c.key,
        window: c.window,
        retry_after_sec: retry,
        from: s.from,
        to: s.to,
      },
      'over a rate quota',
    );
    return new AdmpError(
      'rate_limited',
      `policy ${c.rule}: ${c.key} is over ${limit} messages per ${window_sec} s` +
        `${burst !== undefined ? ` (burst ${burst})` : ''}; retry in ${retry} s`,
      { rule: c.rule, key: c.key, window: c.window, retry_after_sec: retry },
    );
  }

  return {
    async active() {
      return hasQuotas(await deps.policy.current());
    },
    async admit(s, scope) {
      const charges = quotaCharges(await deps.policy.current(), s);
      if (charges.length === 0) return undefined;
      const refused = await new Promise<Refused | undefined>((resolve, reject) => {
        queue.push({ charges, resolve, reject });
        pump();
      });
      return refused ? refusal(refused, s, scope) : undefined;
    },
  };
}
