// HTTP POST load from autocannon (in this process) against `admp serve` (a child),
// for the mail ingest road; the send step uses wrk (bench/wrk.ts). Only 2xx count.
import autocannon, { type Result } from 'autocannon';

export interface SendResult {
  readonly perSec: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly seconds: number;
  readonly statusCodes: Record<string, number>;
}

export interface LoadOptions {
  readonly connections: number;
  readonly seconds: number;
}

/** POSTs to `path` from `connections` keep-alive connections for `seconds`, one request each at a time. */
export async function postLoad(
  url: string,
  path: string,
  opts: LoadOptions,
  next: () => { headers: Record<string, string>; body: string | Buffer },
): Promise<SendResult> {
  const run = autocannon({
    url,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.seconds,
    timeout: 10,
    requests: [{ method: 'POST', path, setupRequest: (req) => ({ ...req, ...next() }) }],
  });
  return summarize(await run);
}

/** autocannon's result as the report needs it: only 2xx count. */
export function summarize(r: Result): SendResult {
  return {
    perSec: r['2xx'] / r.duration,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    seconds: r.duration,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count])),
  };
}
