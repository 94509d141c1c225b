// SDK consume() beside the raw "pull carrying its acks" loop (bench/pull-ack.ts) on one
// server and database: same consumers, same batch size, same backlog, one after the other.
import type pg from 'pg';
import { AdmpClient } from '../src/sdk/index.js';
import { httpPullAck, prefillInboxes } from './pull-ack.js';

export interface SdkStepOptions {
  readonly url: string;
  readonly pool: pg.Pool;
  /** The inboxes' agent ids, and one bearer token per consumer (consumers share the inboxes). */
  readonly inboxes: readonly string[];
  readonly tokens: readonly string[];
  readonly seconds: number;
  readonly batch: number;
  readonly backlog: number;
  readonly log: (line: string) => void;
}

/** The result line: both rates and their ratio (the target: SDK ≥ 0.9 × raw). */
export async function sdkBesideRaw(o: SdkStepOptions): Promise<string> {
  o.log(`prefilling ${o.backlog} messages into ${o.inboxes.length} inboxes`);
  await prefillInboxes(o.pool, o.inboxes, o.backlog);
  const raw = await httpPullAck(
    o.url,
    o.tokens.map((token) => ({ token })),
    { seconds: o.seconds, max: o.batch, ackInPull: true },
  );
  o.log(`raw carried-acks loop: ${raw.perSec.toFixed(0)} msgs/s (${raw.items} in ${raw.seconds.toFixed(1)} s)`);

  await o.pool.query("DELETE FROM message WHERE status IN ('acked', 'leased', 'delivered')");
  await prefillInboxes(o.pool, o.inboxes, o.backlog);
  let handled = 0;
  const started = performance.now();
  const running = o.tokens.map((token) =>
    new AdmpClient({ baseUrl: o.url, credentials: { token } }).consume(
      () => {
        handled++;
      },
      { concurrency: o.batch, visibilityTimeout: 60, wait: 1, onError: (e) => o.log(`consume error: ${String(e)}`) },
    ),
  );
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const counted = handled;
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(running.map((c) => c.stop()));
  await o.pool.query("DELETE FROM message WHERE status IN ('acked', 'leased', 'delivered')");
  const sdk = counted / elapsed;
  o.log(`SDK consume(): ${sdk.toFixed(0)} msgs/s (${counted} in ${elapsed.toFixed(1)} s)`);
  return `sdk consume ${sdk.toFixed(0)} msgs/s vs raw carried-acks ${raw.perSec.toFixed(0)} msgs/s: ratio ${(sdk / raw.perSec).toFixed(2)} (target ≥ 0.90)`;
}
