// HTTP pull+ack cycle throughput: inboxes prefilled through enqueue_message (the one
// enqueue path, in large SQL batches), then concurrent consumers each loop
// POST /v1/inbox/pull {max} → POST /v1/messages/ack {items} (one batch ack per pull).
import type pg from 'pg';
import { Pool } from 'undici';
import { runLoops, type LoopResult } from './loops.js';
import { settle } from './postgres.js';
import { BODY_PREFIX, SENDER_ADDRESS, SUBJECT, TTL_SEC, TYPE } from './workload.js';

const PREFILL_BATCH = 5000;

/** Puts `total` deliverable messages, round-robin, into the given inboxes; returns rows/s. */
export async function prefillInboxes(pool: pg.Pool, inboxes: readonly string[], total: number): Promise<number> {
  const started = performance.now();
  const batches = Array.from({ length: Math.ceil(total / PREFILL_BATCH) }, (_, i) => i * PREFILL_BATCH);
  const one = (from: number) =>
    pool.query(
      `SELECT count(*) FROM enqueue_message((
       SELECT jsonb_agg(jsonb_build_object(
                'to_agent_id', ($2::text[])[1 + g % cardinality($2::text[])], 'channel', 'http', 'status', 'delivered',
                'from_agent', $3::text, 'subject', $4::text, 'type', $5::text, 'ttl_sec', $6::int,
                'body', ($7::text || g || '}')::jsonb,
                'correlation_id', gen_random_uuid(), 'idempotency_key', gen_random_uuid(),
                'source_fingerprint', encode(sha256(gen_random_uuid()::text::bytea), 'hex')))
         FROM generate_series($1::int, $1::int + $8::int - 1) g))`,
      [from, inboxes, SENDER_ADDRESS, SUBJECT, TYPE, TTL_SEC, BODY_PREFIX, Math.min(PREFILL_BATCH, total - from)],
    );
  // Two statements in flight: one per core.
  for (let i = 0; i < batches.length; i += 2) await Promise.all(batches.slice(i, i + 2).map(one));
  return total / ((performance.now() - started) / 1000);
}

interface Lease {
  id: string;
  lease_id: string;
}
interface Pulled {
  messages: Lease[];
  acked?: { id: string; outcome: string }[];
}
interface Acked {
  results: { id: string; outcome: string }[];
}

export interface Consumer {
  readonly token: string;
}

/**
 * `ackInPull`: each pull carries the acks of the previous batch (`ack` in the pull
 * body), one call per batch; otherwise pull, then POST /v1/messages/ack.
 */
export async function httpPullAck(
  url: string,
  consumers: readonly Consumer[],
  opts: { seconds: number; max: number; ackInPull?: boolean },
): Promise<LoopResult> {
  const http = new Pool(url, {
    connections: consumers.length,
    pipelining: 1,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const post = async <T>(token: string, path: string, payload: unknown): Promise<T> => {
    const res = await http.request({
      method: 'POST',
      path,
      body: JSON.stringify(payload),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  };
  const checkAcked = (results: { outcome: string }[], expected: number): number => {
    const acked = results.filter((r) => r.outcome === 'acked').length;
    if (acked !== expected)
      throw new Error(
        `ack: ${expected - acked} of ${expected} not acked (${results.find((r) => r.outcome !== 'acked')?.outcome})`,
      );
    return acked;
  };
  const held: Lease[][] = consumers.map(() => []);
  try {
    if (opts.ackInPull) {
      // Each consumer holds one batch before the clock starts; a loop turn acks it and takes the next.
      await Promise.all(
        consumers.map(async (c, w) => {
          held[w] = (await post<Pulled>(c.token, '/v1/inbox/pull', { max: opts.max })).messages;
        }),
      );
      return await runLoops(consumers.length, opts.seconds, async (w) => {
        const ack = held[w]!.map((m) => ({ id: m.id, lease_id: m.lease_id }));
        const { messages, acked } = await post<Pulled>(consumers[w]!.token, '/v1/inbox/pull', {
          max: opts.max,
          ...(ack.length ? { ack } : {}),
        });
        held[w] = messages;
        return ack.length ? checkAcked(acked ?? [], ack.length) : 0;
      });
    }
    return await runLoops(consumers.length, opts.seconds, async (w) => {
      const { token } = consumers[w]!;
      const { messages } = await post<Pulled>(token, '/v1/inbox/pull', { max: opts.max });
      if (messages.length === 0) return 0;
      const { results } = await post<Acked>(token, '/v1/messages/ack', {
        items: messages.map((m) => ({ id: m.id, lease_id: m.lease_id })),
      });
      return checkAcked(results, messages.length);
    });
  } finally {
    await http.close();
  }
}

export interface PullStepSettings {
  /** The inboxes (agent id and token); consumer i uses inbox i mod their number. */
  readonly inboxes: readonly { id: string; token: string }[];
  readonly consumers: number;
  readonly backlog: number;
  readonly batch: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly ackInPull?: boolean;
}

/**
 * The pull step of `npm run bench`, for every script that prints a figure beside it: a
 * backlog prefilled, then `VACUUM ANALYZE` and `CHECKPOINT` (without fresh statistics the
 * claim's generic plan is made for an empty table), a warm-up, then the measured window,
 * run by `measure` (the main bench wraps it in its CPU window).
 */
export async function pullStep<T = LoopResult>(
  pool: pg.Pool,
  url: string,
  s: PullStepSettings,
  measure: (run: () => Promise<LoopResult>) => Promise<T> = (run) => run() as Promise<T>,
): Promise<{ prefillRate: number; result: T }> {
  const prefillRate = await prefillInboxes(
    pool,
    s.inboxes.map((a) => a.id),
    s.backlog,
  );
  await settle(pool, ['message']);
  const consumers = Array.from({ length: s.consumers }, (_, i) => ({ token: s.inboxes[i % s.inboxes.length]!.token }));
  const cycle = { max: s.batch, ackInPull: s.ackInPull ?? false };
  await httpPullAck(url, consumers, { ...cycle, seconds: s.warmupSeconds });
  const result = await measure(() => httpPullAck(url, consumers, { ...cycle, seconds: s.seconds }));
  return { prefillRate, result };
}
