// Per-agent request limits on the agent API (ADMP_API_RATE_LIMIT per
// ADMP_API_RATE_WINDOW_SEC): every authenticated call counts, pulls and long polls
// included, so a looping or compromised agent cannot monopolise the instance.
// Counted in this process's memory: a request must not pay a database round trip
// to be counted (the API's point is sub-millisecond sends), so with several processes
// or instances an agent may make the limit on each. rate-limiter-flexible's memory
// store: fixed windows per key, expired keys dropped by timers.
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import type { Metrics } from '../metrics.js';

export type RequestLimit = (agentId: string) => Promise<void>;

/** Undefined when ADMP_API_RATE_LIMIT is 0 (no limit). */
export function createRequestLimit(config: Config, metrics?: Metrics): RequestLimit | undefined {
  if (config.apiRateLimit === 0) return undefined;
  const limiter = new RateLimiterMemory({ points: config.apiRateLimit, duration: config.apiRateWindowSec });
  const window = `${config.apiRateWindowSec}s`;
  return async (agentId) => {
    try {
      await limiter.consume(agentId);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      metrics?.rateLimited.inc({ scope: 'api', rule: 'api', window });
      const retryAfterSec = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw new AdmpError(
        'rate_limited',
        `agent ${agentId} is over ${config.apiRateLimit} requests per ${window}; retry in ${retryAfterSec} s`,
        { rule: 'api', key: agentId, window, retry_after_sec: retryAfterSec },
      );
    }
  };
}
