// `npx tsx bench/compare-send.ts`: the HTTP send of several checkouts side by side, on one
// PostgreSQL, in interleaved windows. Each checkout migrates its own database with its own
// code and serves it with its own `admp serve`; every server is up and warmed for the whole
// run, and each round drives them in turn (the order reversed every other round), so a
// change in the machine's speed lands on all of them. Separate `npm run bench` runs of two
// checkouts differ here by up to a third from run to run; the per-round ratios of this one
// move far less. Settings and an example: bench/README.md ("Send, checkout beside checkout").
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type pg from 'pg';
import { cpuWindow } from './cpu.js';
import { commitStats, settle, startPostgres } from './postgres.js';
import { startServer } from './server.js';
import { wrkSend } from './wrk.js';
import { DOMAIN, SENDER, sendRecipient } from './workload.js';
import { positiveInt } from './env.js';

interface Checkout {
  readonly label: string;
  readonly root: string;
  /** SQL run after the checkout's migrations: a schema variant to measure (say, a function redefined). */
  readonly sql?: string;
}

/** `label=path[+file.sql],…`; the default compares this checkout with itself (an A/A run). */
function checkouts(spec: string): Checkout[] {
  const list = spec.split(',').map((item) => {
    const m = /^([a-z0-9_-]+)=([^+]+)(?:\+(.+))?$/i.exec(item.trim());
    if (!m) throw new Error(`BENCH_CHECKOUTS: "${item}" is not label=path or label=path+file.sql`);
    return { label: m[1]!, root: resolve(m[2]!), sql: m[3] === undefined ? undefined : readFileSync(m[3], 'utf8') };
  });
  if (new Set(list.map((c) => c.label)).size !== list.length) throw new Error('BENCH_CHECKOUTS: labels must differ');
  return list;
}

const CHECKOUTS = checkouts(process.env.BENCH_CHECKOUTS ?? 'a=.,b=.');
const ROUNDS = positiveInt('BENCH_ROUNDS', 6);
const SECONDS = positiveInt('BENCH_SECONDS', 4);
const WARMUP_SECONDS = positiveInt('BENCH_WARMUP_SECONDS', 3);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 32);
const RECIPIENTS = positiveInt('BENCH_RECIPIENTS', 100);
const POOL_MAX = positiveInt('BENCH_PG_POOL_MAX', 16);

const WIDTH = Math.max(...CHECKOUTS.map((c) => c.label.length));

const log = (line: string) => {
  // The servers log at warn; only their errors are worth a line here.
  if (!line.includes('[admp serve]') || /error|fatal/i.test(line)) console.log(`# ${line}`);
};

interface Window {
  readonly perSec: number;
  readonly p99Ms: number;
  /** CPU per send of the server and of PostgreSQL, microseconds. */
  readonly serverUs: number;
  readonly postgresUs: number;
  readonly foreignPct: number;
  readonly rowsPerCommit: number;
}

interface Running {
  readonly checkout: Checkout;
  readonly url: string;
  readonly pid: number;
  readonly pool: pg.Pool;
  readonly token: string;
  readonly stop: () => Promise<void>;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const pgs = await startPostgres(log);
const running: Running[] = [];
try {
  for (const checkout of CHECKOUTS) {
    const db = await pgs.database(`compare_${checkout.label.replace(/-/g, '_')}`);
    // The checkout's own migrations and agent code: a checkout from before a schema change
    // is measured on its own schema.
    const { migrate } = (await import(`${checkout.root}/src/db/migrate.ts`)) as {
      migrate: (pool: pg.Pool) => Promise<unknown>;
    };
    const { addAgent } = (await import(`${checkout.root}/src/db/agents.ts`)) as {
      addAgent: (pool: pg.Pool, id: string, domain: string) => Promise<{ token: string }>;
    };
    await migrate(db.pool);
    if (checkout.sql) await db.pool.query(checkout.sql);
    const sender = await addAgent(db.pool, SENDER, DOMAIN);
    for (let i = 0; i < RECIPIENTS; i++) await addAgent(db.pool, sendRecipient(i), DOMAIN);
    const env = { ADMP_PG_POOL_MAX: String(POOL_MAX), ADMP_MIGRATE_ON_START: 'false' };
    const server = await startServer(db.url, env, log, checkout.root);
    running.push({ checkout, url: server.url, pid: server.pid, pool: db.pool, token: sender.token, stop: server.stop });
    log(`${checkout.label}: ${checkout.root}${checkout.sql ? ' (with its SQL)' : ''} on ${server.url}`);
  }
  const postgres = await pgs.postmasterPid();
  const drive = (r: Running, seconds: number) =>
    wrkSend(r.url, r.token, { connections: CONNECTIONS, seconds, recipients: RECIPIENTS });
  // Two warm-up windows each: a fresh process is slower per request for its first seconds.
  for (let w = 0; w < 2; w++)
    for (const r of running) log(`${r.checkout.label} warm-up ${(await drive(r, WARMUP_SECONDS)).perSec.toFixed(0)}/s`);

  const windows = new Map<string, Window[]>(running.map((r) => [r.checkout.label, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const r of round % 2 ? running : [...running].reverse()) {
      await settle(r.pool, ['message']);
      const before = await commitStats(r.pool);
      const close = cpuWindow({ server: r.pid, postgres, bench: process.pid });
      const sent = await drive(r, SECONDS);
      const cpu = close();
      const after = await commitStats(r.pool);
      const w: Window = {
        perSec: sent.perSec,
        p99Ms: sent.p99Ms,
        serverUs: ((cpu.server ?? 0) / 100 / sent.perSec) * 1e6,
        postgresUs: ((cpu.postgres ?? 0) / 100 / sent.perSec) * 1e6,
        foreignPct: cpu.foreign ?? 0,
        rowsPerCommit: (after.rows - before.rows) / Math.max(1, after.commits - before.commits),
      };
      windows.get(r.checkout.label)!.push(w);
      console.log(
        `round ${round} ${r.checkout.label.padEnd(WIDTH)} ${w.perSec.toFixed(0).padStart(6)} req/s  ` +
          `server ${w.serverUs.toFixed(0)} µs  postgres ${w.postgresUs.toFixed(0)} µs per send  ` +
          `p99 ${w.p99Ms.toFixed(1)} ms  ${w.rowsPerCommit.toFixed(1)} rows/commit  foreign ${w.foreignPct}%` +
          (sent.non2xx + sent.errors ? `  non-2xx ${sent.non2xx}, errors ${sent.errors}` : ''),
      );
    }
  }
  const first = windows.get(running[0]!.checkout.label)!;
  for (const r of running) {
    const ws = windows.get(r.checkout.label)!;
    const ratios = ws.map((w, i) => w.perSec / first[i]!.perSec);
    console.log(
      `${r.checkout.label.padEnd(WIDTH)} median ${median(ws.map((w) => w.perSec)).toFixed(0)} req/s ` +
        `(${Math.min(...ws.map((w) => w.perSec)).toFixed(0)}–${Math.max(...ws.map((w) => w.perSec)).toFixed(0)}), ` +
        `server ${median(ws.map((w) => w.serverUs)).toFixed(0)} µs, postgres ${median(ws.map((w) => w.postgresUs)).toFixed(0)} µs per send; ` +
        `× ${running[0]!.checkout.label} per round ${ratios.map((x) => x.toFixed(2)).join(' ')}, median ${median(ratios).toFixed(2)}`,
    );
  }
} finally {
  for (const r of running) {
    await r.pool.end().catch(() => undefined);
    await r.stop().catch(() => undefined);
  }
  await pgs.stop();
}
