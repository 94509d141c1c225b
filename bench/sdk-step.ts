// SDK consume() beside the raw "pull carrying its acks" loop (bench/pull-ack.ts) on one
// server and database: same consumers, same batch size, same backlog, each prefilled,
// settled and warmed up as the main bench's pull step, one after the other.
import type pg from 'pg';
import { AdmpClient } from '../src/sdk/index.js';
import { formatCpu, withCpu, type CpuGroups } from './cpu.js';
import { settle } from './postgres.js';
import { prefillInboxes, pullStep, type PullStepSettings } from './pull-ack.js';
import { besideLine } from './report.js';

export interface SdkStepOptions extends PullStepSettings {
  readonly url: string;
  readonly pool: pg.Pool;
  readonly log: (line: string) => void;
  /** Process trees whose CPU time per message is reported (postgres, server, this process). */
  readonly cpu: CpuGroups;
}

/** `consumers` SDK consumers (concurrency = the batch) for `seconds`; messages handled per second. */
async function consumeFor(o: SdkStepOptions, seconds: number): Promise<{ perSec: number; handled: number }> {
  let handled = 0;
  const started = performance.now();
  const running = Array.from({ length: o.consumers }, (_, i) =>
    new AdmpClient({ baseUrl: o.url, credentials: { token: o.inboxes[i % o.inboxes.length]!.token } }).consume(
      () => {
        handled++;
      },
      { concurrency: o.batch, visibilityTimeout: 60, wait: 1, onError: (e) => o.log(`consume error: ${String(e)}`) },
    ),
  );
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const counted = handled;
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(running.map((c) => c.stop()));
  return { perSec: counted / elapsed, handled: counted };
}

/** The result line: both rates and their ratio (the target: SDK ≥ 0.9 × raw). */
export async function sdkBesideRaw(o: SdkStepOptions): Promise<string> {
  o.log(
    `raw carried-acks loop: ${o.backlog} messages prefilled into ${o.inboxes.length} inboxes, ${o.consumers} consumers`,
  );
  const {
    result: { result: raw, cpu: rawCpu },
  } = await pullStep(o.pool, o.url, { ...o, ackInPull: true }, (run) => withCpu(o.cpu, run));
  o.log(
    `raw carried-acks loop: ${raw.perSec.toFixed(0)} msgs/s (${raw.items} in ${raw.seconds.toFixed(1)} s; ${formatCpu(rawCpu)})`,
  );

  await o.pool.query("DELETE FROM message WHERE status IN ('acked', 'leased', 'delivered')");
  await prefillInboxes(
    o.pool,
    o.inboxes.map((a) => a.id),
    o.backlog,
  );
  await settle(o.pool, ['message']);
  await consumeFor(o, o.warmupSeconds);
  const { result: sdk, cpu: sdkCpu } = await withCpu(o.cpu, () => consumeFor(o, o.seconds));
  await o.pool.query("DELETE FROM message WHERE status IN ('acked', 'leased', 'delivered')");
  o.log(`SDK consume(): ${sdk.perSec.toFixed(0)} msgs/s (${sdk.handled} in ${o.seconds} s; ${formatCpu(sdkCpu)})`);
  return besideLine('sdk consume', sdk.perSec, sdkCpu, 'raw carried-acks', raw.perSec, rawCpu, 0.9);
}
