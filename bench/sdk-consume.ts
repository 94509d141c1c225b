// `npx tsx bench/sdk-consume.ts`: the SDK's consume() against the raw "pull carrying
// its acks" loop (bench/pull-ack.ts) on one server and database, same consumers, same
// batch size, same backlog, one after the other. Prints both rates and the ratio (the
// issue's target: SDK ≥ 0.9 × raw). Settings: BENCH_SECONDS (10), BENCH_CONSUMERS (8),
// BENCH_PULL_INBOXES (4), BENCH_BATCH (10), BENCH_BACKLOG (100 000).
import { addAgent } from '../src/db/agents.js';
import { AdmpClient } from '../src/sdk/index.js';
import { startPostgres } from './postgres.js';
import { httpPullAck, prefillInboxes } from './pull-ack.js';
import { startServer } from './server.js';
import { DOMAIN, pullInbox } from './workload.js';

const int = (name: string, dflt: number) => Number(process.env[name] || dflt);
const seconds = int('BENCH_SECONDS', 10);
const consumers = int('BENCH_CONSUMERS', 8);
const inboxCount = int('BENCH_PULL_INBOXES', 4);
const batch = int('BENCH_BATCH', 10);
const backlog = int('BENCH_BACKLOG', 100_000);
const log = (line: string) => console.log(`# ${line}`);

const pg = await startPostgres(log);
const db = await pg.database('sdk_consume', { migrate: true });
const server = await startServer(db.url, {}, log);
try {
  const inboxes = await Promise.all(
    Array.from({ length: inboxCount }, (_, i) => addAgent(db.pool, pullInbox(i), DOMAIN)),
  );
  const tokens = Array.from({ length: consumers }, (_, i) => inboxes[i % inboxes.length]!.token);

  log(`prefilling ${backlog} messages into ${inboxCount} inboxes`);
  await prefillInboxes(
    db.pool,
    inboxes.map((_, i) => pullInbox(i)),
    backlog,
  );
  const raw = await httpPullAck(
    server.url,
    tokens.map((token) => ({ token })),
    { seconds, max: batch, ackInPull: true },
  );
  log(`raw carried-acks loop: ${raw.perSec.toFixed(0)} msgs/s (${raw.items} in ${raw.seconds.toFixed(1)} s)`);

  await db.pool.query("DELETE FROM message WHERE status IN ('acked', 'leased', 'delivered')");
  await prefillInboxes(
    db.pool,
    inboxes.map((_, i) => pullInbox(i)),
    backlog,
  );
  let handled = 0;
  const started = performance.now();
  const running = tokens.map((token) =>
    new AdmpClient({ baseUrl: server.url, credentials: { token } }).consume(
      () => {
        handled++;
      },
      { concurrency: batch, visibilityTimeout: 60, wait: 1, onError: (e) => log(`consume error: ${String(e)}`) },
    ),
  );
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const counted = handled;
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(running.map((c) => c.stop()));
  const sdk = counted / elapsed;
  log(`SDK consume(): ${sdk.toFixed(0)} msgs/s (${counted} in ${elapsed.toFixed(1)} s)`);
  console.log(
    `sdk consume ${sdk.toFixed(0)} msgs/s vs raw carried-acks ${raw.perSec.toFixed(0)} msgs/s: ratio ${(sdk / raw.perSec).toFixed(2)} (target ≥ 0.90)`,
  );
} finally {
  await server.stop();
  await db.drop();
  await pg.stop();
}
