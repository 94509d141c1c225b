// `npx tsx bench/sdk-consume.ts`: the SDK's consume() against the raw "pull carrying
// its acks" loop (bench/sdk-step.ts) on one server and database. Prints both rates and
// the ratio (the target: SDK ≥ 0.9 × raw). Settings: BENCH_SECONDS (10),
// BENCH_WARMUP_SECONDS (3), BENCH_CONSUMERS (16), BENCH_PULL_INBOXES (4), BENCH_BATCH (10), BENCH_BACKLOG (200 000).
// bench/interfaces.ts runs the same step beside the webhook and MCP figures.
import { addAgent } from '../src/db/agents.js';
import { startPostgres } from './postgres.js';
import { sdkBesideRaw } from './sdk-step.js';
import { startServer } from './server.js';
import { DOMAIN, pullInbox } from './workload.js';
import { pullSettings } from './env.js';

const { seconds, warmupSeconds, consumers, pullInboxes: inboxCount, batch, backlog } = pullSettings(10);
const log = (line: string) => console.log(`# ${line}`);

const pg = await startPostgres(log);
const db = await pg.database('sdk_consume', { migrate: true });
const server = await startServer(db.url, {}, log);
try {
  const inboxes = await Promise.all(
    Array.from({ length: inboxCount }, (_, i) => addAgent(db.pool, pullInbox(i), DOMAIN)),
  );
  console.log(
    await sdkBesideRaw({
      url: server.url,
      pool: db.pool,
      inboxes,
      consumers,
      seconds,
      warmupSeconds,
      batch,
      backlog,
      log,
      cpu: { postgres: await pg.postmasterPid(), server: server.pid, bench: process.pid },
    }),
  );
} finally {
  await server.stop();
  await db.drop();
  await pg.stop();
}
