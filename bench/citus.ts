// The "citus" step (BENCH_ONLY=citus; not in the default run, it needs Citus built into
// Debian's PostgreSQL 15, see docs/scaling.md): HTTP send and HTTP pull+ack on a Citus
// coordinator with two workers, `admp scale citus` applied, beside the same pass on one
// PostgreSQL 15 server of the same build and settings, in the same run. All the nodes
// share this machine's cores, so the cluster's figures are lower here: they show that
// the statements run there, and the cost of routing each through the coordinator.
import pg from 'pg';
import { createPool } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import { distributeCitus } from '../src/db/citus.js';
import {
  citusMissing,
  createCitusDatabase,
  dropDatabaseOnNodes,
  startCitusCluster,
  type CitusCluster,
} from '../test/helpers/citus.js';
import { addQueueAgents, passErrors, queuePass, type QueuePass, type QueuePassSettings } from './queue-pass.js';
import { startServer } from './server.js';

/** Durable, as the embedded server of the other steps: the test helper's defaults turn these off. */
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: "'128MB'" };
const DATABASE = 'admp_bench_citus';

export interface CitusRow {
  readonly setup: string;
  readonly pass: QueuePass;
}

async function measureOn(
  cluster: CitusCluster,
  distributed: boolean,
  s: QueuePassSettings & { poolMax: number },
  log: (line: string) => void,
): Promise<QueuePass> {
  const admin = cluster.url(cluster.coordinator);
  const workers = cluster.workers.map((w) => cluster.url(w));
  if (distributed) await createCitusDatabase(admin, workers, DATABASE);
  else {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`CREATE DATABASE ${DATABASE}`).finally(() => c.end());
  }
  const url = cluster.url(cluster.coordinator, DATABASE);
  const pool = createPool(url, 8);
  try {
    await migrate(pool);
    if (distributed) await distributeCitus(pool);
    const agents = await addQueueAgents(pool, s);
    const server = await startServer(url, { ADMP_PG_POOL_MAX: String(s.poolMax) }, log);
    try {
      return await queuePass(pool, server.url, agents, s);
    } finally {
      await server.stop();
    }
  } finally {
    await pool.end();
    await dropDatabaseOnNodes([admin, ...workers], DATABASE);
  }
}

export async function citusBench(
  log: (line: string) => void,
  s: QueuePassSettings & { poolMax: number; shardCount: number },
): Promise<CitusRow[]> {
  const missing = citusMissing();
  if (missing) throw new Error(`the citus step ${missing}`);
  const rows: CitusRow[] = [];
  // One server at a time on the shared cores: the single server first, then the cluster.
  const single = await startCitusCluster({ workers: 0, settings: DURABLE });
  try {
    log('citus: one PostgreSQL 15 server (no citus extension in the database)');
    rows.push({ setup: 'one PostgreSQL 15 server', pass: await measureOn(single, false, s, log) });
  } finally {
    await single.stop();
  }
  const cluster = await startCitusCluster({ workers: 2, shardCount: s.shardCount, settings: DURABLE });
  try {
    log(`citus: coordinator + 2 workers, ${s.shardCount} shards, admp scale citus`);
    rows.push({
      setup: `Citus 13.2: coordinator + 2 workers (${s.shardCount} shards)`,
      pass: await measureOn(cluster, true, s, log),
    });
  } finally {
    await cluster.stop();
  }
  for (const r of rows)
    log(
      `citus: ${r.setup}: send ${Math.round(r.pass.send.perSec)} req/s, pull+ack ${Math.round(r.pass.pullAck.perSec)} msgs/s`,
    );
  return rows;
}

export function citusReport(rows: readonly CitusRow[]): string {
  const base = rows[0];
  const ratio = (v: number, b: number | undefined) => (b ? (v / b).toFixed(2) : '–');
  return [
    '| setup (same run, same machine) | send req/s | × one server | pull+ack msgs/s | × one server |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${Math.round(r.pass.send.perSec)} | ${ratio(r.pass.send.perSec, base?.pass.send.perSec)} | ${Math.round(r.pass.pullAck.perSec)} | ${ratio(r.pass.pullAck.perSec, base?.pass.pullAck.perSec)} |`,
    ),
    ...rows.flatMap((r) => passErrors(r.pass).map((e) => `- ${r.setup}: ${e}`)),
  ].join('\n');
}
