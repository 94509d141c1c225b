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

export async function httpSend(url: string, token: string, opts: { connections: number; seconds: number; recipients: number }): Promise<SendResult> {
  let seq = 0;
  const run = autocannon({
    url,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.seconds,
    timeout: 10,
    requests: [{
      method: 'POST',
      path: '/v1/messages',
      setupRequest: (req) => ({
        ...req,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
        body: sendRequest(sendRecipient(Math.floor(Math.random() * opts.recipients)), seq++),
      }),
    }],
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
