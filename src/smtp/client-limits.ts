// Per-client limits of the SMTP edge: concurrent connections per address, and rates
// of new connections and of messages per address (rate-limiter-flexible, fixed window,
// in memory: with several worker processes each keeps its own count). An IPv6
// client is one /64, the smallest prefix a site is usually given (RFC 6177), so
// that hopping through its own addresses does not multiply its allowance.
import { isIPv6 } from 'node:net';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface ClientLimitSettings {
  readonly perIp: number;
  readonly connectionsPerWindow: number;
  readonly messagesPerWindow: number;
  readonly windowSec: number;
}

export type Admission = 'ok' | 'too_many_connections' | 'rate_limited';

/** The key a client is counted under: an IPv4 address, or the /64 of an IPv6 one. */
export function clientKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  if (v4) return v4;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export interface ClientLimits {
  /** Counts a new connection; anything but 'ok' means it must be turned away (and is not counted). */
  admit(ip: string): Promise<Admission>;
  /** The connection admitted for `ip` has closed. */
  release(ip: string): void;
  /** Counts one message (MAIL FROM); false when the client is over its message rate. */
  message(ip: string): Promise<boolean>;
  /** Connections open per client key (for tests and the log). */
  open(ip: string): number;
}

export function createClientLimits(s: ClientLimitSettings): ClientLimits {
  const open = new Map<string, number>();
  const connections = new RateLimiterMemory({ points: s.connectionsPerWindow, duration: s.windowSec });
  const messages = new RateLimiterMemory({ points: s.messagesPerWindow, duration: s.windowSec });
  // consume() rejects with a RateLimiterRes when over the limit, with an Error when the store fails.
  const within = (p: Promise<unknown>): Promise<boolean> =>
    p.then(
      () => true,
      (err) => {
        if (err instanceof RateLimiterRes) return false;
        throw err;
      },
    );
  return {
    async admit(ip) {
      const key = clientKey(ip);
      if ((open.get(key) ?? 0) >= s.perIp) return 'too_many_connections';
      if (!(await within(connections.consume(key)))) return 'rate_limited';
      // Counted after the await: the check above and this increment must not be split by another admit.
      const n = open.get(key) ?? 0;
      if (n >= s.perIp) return 'too_many_connections';
      open.set(key, n + 1);
      return 'ok';
    },
    release(ip) {
      const key = clientKey(ip);
      const n = (open.get(key) ?? 1) - 1;
      if (n <= 0) open.delete(key);
      else open.set(key, n);
    },
    message: (ip) => within(messages.consume(clientKey(ip))),
    open: (ip) => open.get(clientKey(ip)) ?? 0,
  };
}
