// The peer: pg-boss (the npm `latest`, 12.x) on a database of its own, same body,
// same pool size as our server (16). send() with as many calls in flight as our
// send has connections; fetch({batchSize}) + complete(ids) loops on a prefilled queue.
import { readFileSync } from 'node:fs';
import { PgBoss } from 'pg-boss';
import { runLoops, type LoopResult } from './loops.js';
import { body } from './workload.js';

const SEND_QUEUE = 'bench_send';
const FETCH_QUEUE = 'bench_fetch';
const INSERT_BATCH = 1000;

export interface BossBench {
  readonly version: string;
  send(inFlight: number, seconds: number): Promise<LoopResult>;
  /** Prefills the fetch queue with `total` jobs via insert(); returns jobs/s. */
  prefill(total: number): Promise<number>;
  fetchComplete(workers: number, batchSize: number, seconds: number): Promise<LoopResult>;
  stop(): Promise<void>;
}

export async function startBoss(url: string, poolMax: number, log: (line: string) => void): Promise<BossBench> {
  // Defaults otherwise (maintenance and monitoring on), as a deployment would run it.
  const boss = new PgBoss({ connectionString: url, max: poolMax });
  boss.on('error', (err: Error) => log(`[pg-boss] error: ${err.message}`));
  await boss.start();
  await boss.createQueue(SEND_QUEUE);
  await boss.createQueue(FETCH_QUEUE);
  let seq = 0;
  return {
    version: (
      JSON.parse(readFileSync(new URL('../node_modules/pg-boss/package.json', import.meta.url), 'utf8')) as {
        version: string;
      }
    ).version,
    send: (inFlight, seconds) =>
      runLoops(inFlight, seconds, async () => ((await boss.send(SEND_QUEUE, body(seq++) as object)) ? 1 : 0)),
    async prefill(total) {
      const started = performance.now();
      const batch = (n: number) => Array.from({ length: n }, () => ({ data: body(seq++) as object }));
      for (let done = 0; done < total;) {
        const sizes = [0, 1]
          .map((i) => Math.max(0, Math.min(INSERT_BATCH, total - done - i * INSERT_BATCH)))
          .filter((n) => n > 0);
        await Promise.all(sizes.map((n) => boss.insert(FETCH_QUEUE, batch(n))));
        done += sizes.reduce((a, b) => a + b, 0);
      }
      return total / ((performance.now() - started) / 1000);
    },
    fetchComplete: (workers, batchSize, seconds) =>
      runLoops(workers, seconds, async () => {
        const jobs = await boss.fetch(FETCH_QUEUE, { batchSize });
        if (jobs.length === 0) return 0;
        await boss.complete(
          FETCH_QUEUE,
          jobs.map((j) => j.id),
        );
        return jobs.length;
      }),
    stop: () => boss.stop({ graceful: false, close: true }),
  };
}
