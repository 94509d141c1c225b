// HTTP send throughput: autocannon (in this process) against `admp serve` (a child),
// every request a POST /v1/messages from one authenticated sender to a random one of
// the recipients, with its own Idempotency-Key and correlation id. Only 2xx count.
import { randomUUID } from 'node:crypto';
import autocannon, { type Result } from 'autocannon';
import { sendRecipient, sendRequest } from './workload.js';

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

export interface LoadOptions { readonly connections: number; readonly seconds: number }

/** POSTs to `path` from `connections` keep-alive connections for `seconds`, one request each at a time. */
export async function postLoad(url: string, path: string, opts: LoadOptions, next: () => { headers: Record<string, string>; body: string | Buffer }): Promise<SendResult> {
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

export async function httpSend(url: string, token: string, opts: LoadOptions & { recipients: number }): Promise<SendResult> {
  let seq = 0;
  return postLoad(url, '/v1/messages', opts, () => ({
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: sendRequest(sendRecipient(Math.floor(Math.random() * opts.recipients)), seq++),
  }));
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
