// Rate quotas, enforced: every road (the mail pipeline's check-rate step, HTTP sends and
// replies through the Mailbox) asks which quotas a message is counted against, and hands
// them to the statement that stores it (enqueue_message, migrations/0018): the count
// rides in the enqueue batch's statement and commit, so a quota costs no round trip of
// its own, and only a message stored new is counted (a retry of a stored one spends
// none). Counters live in PostgreSQL, shared by every instance and kept across restarts.
// A message with several quotas is counted by each even when another refuses it, and so
// are the other recipients of a mail refused whole: conservative, never over the limit.
import { AdmpError } from '../errors.js';
import { quotaCharges, type QuotaCharge, type QuotaSubject } from '../core/rate-quota.js';
import type { EnqueueResult } from '../db/message-row.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PolicySource } from './store.js';

export type { QuotaCharge, QuotaSubject };

/** Which road asked, for the metric and the log line. */
export type QuotaScope = 'mail' | 'http';

/** What the enqueue answered for a message over a quota. */
export type QuotaRefused = NonNullable<EnqueueResult['refused']>;

export interface QuotaGate {
  /** The quotas the message is counted against when it is stored (empty without a matching `limit` rule). */
  charges(s: QuotaSubject): Promise<readonly QuotaCharge[]>;
  /**
   * The refusal of a message the enqueue found over one of `charges` (counted in the
   * metric and logged), or undefined when it was refused only with the rest of its mail.
   */
  refusal(
    charges: readonly QuotaCharge[],
    refused: QuotaRefused,
    s: QuotaSubject,
    scope: QuotaScope,
  ): AdmpError | undefined;
}

export interface QuotaGateDeps {
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

const NONE: readonly QuotaCharge[] = [];

export function createQuotaGate(deps: QuotaGateDeps): QuotaGate {
  const nowUs = deps.nowUs ?? (() => Date.now() * 1000);
  return {
    async charges(s) {
      const charges = quotaCharges(await deps.policy.current(), s);
      return charges.length === 0 ? NONE : charges;
    },

    refusal(charges, refused, s, scope) {
      const c = charges.find((x) => x.counter === refused.counter);
      if (!c) return undefined;
      const retry = retryAfterSec(c, refused.tatUs ?? nowUs(), nowUs());
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
    },
  };
}
