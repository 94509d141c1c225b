// `npm run bench`: our HTTP send and HTTP pull+ack throughput against a real
// PostgreSQL, each beside (a) pgbench's single-row INSERT of the same row at the same
// concurrency and (b) pg-boss send and fetch+complete on the same server, and mail
// ingest on both roads (bench/ingest.ts), with the ratios and the targets of the
// issues. Not part of the tests. Settings: bench/README.md.
import { cpus } from 'node:os';
import { addAgent } from '../src/db/agents.js';
import { cpuWindow, formatCpu, type CpuGroups, type CpuReport } from './cpu.js';
import type { LoopResult } from './loops.js';
import { pgbenchInsert } from './pgbench.js';
import { startBoss, type BossBench } from './pgboss.js';
import {
  commitStats,
  once,
  rowsPerCommit,
  settle,
  startPostgres,
  type BenchDatabase,
  type BenchPostgres,
} from './postgres.js';
import { pullStep } from './pull-ack.js';
import {
  cpuPerOp,
  cpuRatioOf,
  cpuTable,
  detailTable,
  metOf,
  ratioOf,
  targetTable,
  writeResults,
  type Measurement,
  type Target,
} from './report.js';
import { ingestBench, quotaBaselineLabel } from './ingest.js';
import { growthBench, growthReport } from './growth.js';
import { citusBench, citusReport } from './citus.js';
import { startServer, type ServerChild } from './server.js';
import { DOMAIN, pullInbox, SENDER, sendRecipient } from './workload.js';
import { wrkSend } from './wrk.js';
import { createTestCa } from '../test/helpers/test-ca.js';
import { ACTIVE_QUOTA_KEYS, quotaPair, quotaPolicyFile, seedQuotaKeys } from './quota.js';
import { positiveInt, pullSettings } from './env.js';

const STEPS = [
  'send',
  'send-tls',
  'send-quota',
  'pgbench',
  'boss-send',
  'pull',
  'pull-next',
  'boss-fetch',
  'ingest',
  'ingest-quota',
  'growth',
  'citus',
] as const;
/** Growth seeds millions of rows, citus starts a cluster of Citus's own build: only when BENCH_ONLY names them. */
const DEFAULT_STEPS = STEPS.filter((s) => s !== 'growth' && s !== 'citus');
type StepName = (typeof STEPS)[number];

const settings = {
  ...pullSettings(15),
  connections: positiveInt('BENCH_CONNECTIONS', 32),
  recipients: positiveInt('BENCH_RECIPIENTS', 100),
  poolMax: positiveInt('BENCH_PG_POOL_MAX', 16),
  quietWaitSeconds: positiveInt('BENCH_QUIET_WAIT_SECONDS', 15),
  ingestConnections: positiveInt('BENCH_INGEST_CONNECTIONS', 32),
  ingestWorkers: (process.env.BENCH_INGEST_WORKERS || '2,1').split(',').map((w) => {
    if (!/^\d+$/.test(w.trim()) || Number(w) < 1)
      throw new Error(`BENCH_INGEST_WORKERS: "${w}" is not a positive integer`);
    return Number(w);
  }),
  ingestCases: process.env.BENCH_INGEST_CASES ?? '',
  ingestRounds: positiveInt('BENCH_INGEST_ROUNDS', 3),
  growthRows: (process.env.BENCH_GROWTH_ROWS || '0,1000000,5000000').split(',').map((w) => {
    if (!/^\d+$/.test(w.trim())) throw new Error(`BENCH_GROWTH_ROWS: "${w}" is not a number`);
    return Number(w);
  }),
  growthAgents: positiveInt('BENCH_GROWTH_AGENTS', 10_000),
  growthIdlePolls: positiveInt('BENCH_GROWTH_IDLE_POLLS', 10_000),
  citusShards: positiveInt('BENCH_CITUS_SHARDS', 32),
  only: (process.env.BENCH_ONLY ?? DEFAULT_STEPS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as StepName[],
};
for (const s of settings.only)
  if (!STEPS.includes(s)) throw new Error(`BENCH_ONLY: unknown step "${s}" (steps: ${STEPS.join(', ')})`);
const wanted = (s: StepName) => settings.only.includes(s);

const log = (line: string) => console.log(`# ${line}`);
const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const f of cleanups.reverse()) await f().catch((e: Error) => log(`cleanup: ${e.message}`));
  })());
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping children and PostgreSQL`);
    void cleanup().finally(() => process.exit(130));
  });
}

// Other work on a shared box skews every figure; wait (bounded) for it to calm down.
const FOREIGN_QUIET_PCT = 15;
const FOREIGN_NOISY_PCT = 20;
async function waitQuiet(groups: CpuGroups): Promise<number> {
  let foreign = 0;
  for (let i = 0, quiet = 0; i < settings.quietWaitSeconds && quiet < 2; i++) {
    const close = cpuWindow(groups);
    await new Promise((r) => setTimeout(r, 1000));
    foreign = close().foreign!;
    quiet = foreign < FOREIGN_QUIET_PCT ? quiet + 1 : 0;
  }
  if (foreign >= FOREIGN_QUIET_PCT) log(`other processes still use ${foreign}% of a core; measuring anyway`);
  return foreign;
}

async function measured<T>(
  groups: CpuGroups,
  fn: () => Promise<T>,
): Promise<{ result: T; cpu: CpuReport; foreignBefore: number }> {
  const foreignBefore = await waitQuiet(groups);
  const close = cpuWindow(groups);
  const result = await fn();
  return { result, cpu: close(), foreignBefore };
}

function noisy(cpu: CpuReport): string[] {
  return cpu.foreign! > FOREIGN_NOISY_PCT
    ? [`other processes used ${cpu.foreign}% of a core during this window: figure is depressed`]
    : [];
}

function loopMeasurement(
  label: string,
  unit: string,
  per: string,
  r: LoopResult,
  cpu: CpuReport,
  notes: string[],
): Measurement {
  const n = [...notes, ...noisy(cpu)];
  if (r.drained) n.push('the backlog ran dry before the time was up: raise BENCH_BACKLOG');
  if (r.firstError) n.push(`first error: ${r.firstError}`);
  return {
    label,
    unit,
    perSec: r.perSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    per,
    errors: r.errors,
    cpu,
    notes: n,
    raw: r,
  };
}

/** A wrk send window as a measurement: only 2xx count; other answers are noted. */
function wrkMeasurement(
  label: string,
  r: Awaited<ReturnType<typeof wrkSend>>,
  cpu: CpuReport,
  notes: string[],
): Measurement {
  const n = [...notes, ...noisy(cpu)];
  if (r.non2xx || r.errors || r.timeouts)
    n.push(`status codes ${JSON.stringify(r.statusCodes)}, errors ${r.errors}, timeouts ${r.timeouts}`);
  return {
    label,
    unit: 'req/s',
    perSec: r.perSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    per: 'request',
    errors: r.non2xx + r.errors + r.timeouts,
    cpu,
    notes: n,
    raw: r,
  };
}

async function main(): Promise<void> {
  const started = new Date();
  log(`settings: ${JSON.stringify(settings)}`);
  const pg: BenchPostgres = await startPostgres(log);
  cleanups.push(() => pg.stop());
  if (wanted('growth')) {
    const g = await growthBench(pg, log, {
      histories: settings.growthRows,
      agents: settings.growthAgents,
      idlePolls: settings.growthIdlePolls,
      ingestConnections: settings.ingestConnections,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      connections: settings.connections,
      recipients: settings.recipients,
      consumers: settings.consumers,
      pullInboxes: settings.pullInboxes,
      batch: settings.batch,
      backlog: settings.backlog,
      poolMax: settings.poolMax,
    });
    console.log(`\n## Growth (history in message; idle long polls)\n\n${growthReport(g)}\n`);
  }
  if (wanted('citus')) {
    const rows = await citusBench(log, { ...settings, shardCount: settings.citusShards });
    console.log(`\n## Citus beside one server (send, pull+ack)\n\n${citusReport(rows)}\n`);
  }
  // Only growth and citus: they report above and need nothing below.
  if (settings.only.every((s) => s === 'growth' || s === 'citus')) return;
  const postgres = await pg.postmasterPid();
  // What the steps before ingest leave running (server, pg-boss and its timers, their
  // databases) is stopped and dropped before ingest, so none of it (autovacuum of the
  // drained tables, pg-boss maintenance) lands in ingest's windows.
  const earlier: (() => Promise<void>)[] = [];
  const retireLater = (f: () => Promise<void>) => {
    const g = once(f);
    earlier.push(g);
    cleanups.push(g);
  };
  const ours: BenchDatabase = await pg.database('ours', { migrate: true });
  retireLater(() => ours.drop());
  const serverVersion = (await ours.pool.query<{ server_version: string }>('SHOW server_version')).rows[0]!
    .server_version;
  log(`PostgreSQL ${serverVersion}; Node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);

  const sender = await addAgent(ours.pool, SENDER, DOMAIN);
  for (let i = 0; i < settings.recipients; i++) await addAgent(ours.pool, sendRecipient(i), DOMAIN);
  const inboxes = await Promise.all(
    Array.from({ length: settings.pullInboxes }, (_, i) => addAgent(ours.pool, pullInbox(i), DOMAIN)),
  );

  const serverEnv = { ADMP_PG_POOL_MAX: String(settings.poolMax) };
  log(`starting admp serve (child process, ADMP_LOG_LEVEL=warn, ADMP_PG_POOL_MAX=${settings.poolMax}, LMTP off)`);
  // Another checkout's server (say, with a proposed change) against the same workload.
  const serverRoot = process.env.BENCH_SERVER_ROOT || undefined;
  if (serverRoot) log(`server from ${serverRoot}`);
  const server: ServerChild = await startServer(ours.url, serverEnv, log, serverRoot);
  retireLater(() => server.stop());
  const groups: CpuGroups = { postgres, server: server.pid, bench: process.pid };
  const results: Partial<Record<StepName, Measurement>> = {};
  const S = settings.seconds;

  if (wanted('send')) {
    log(`HTTP send: warm-up ${settings.warmupSeconds} s`);
    await wrkSend(server.url, sender.token, {
      connections: settings.connections,
      seconds: settings.warmupSeconds,
      recipients: settings.recipients,
    });
    await settle(ours.pool, ['message']);
    log(`HTTP send: wrk, ${settings.connections} connections, one request each at a time, ${S} s`);
    const before = await commitStats(ours.pool);
    const { result: r, cpu } = await measured(groups, () =>
      wrkSend(server.url, sender.token, {
        connections: settings.connections,
        seconds: S,
        recipients: settings.recipients,
      }),
    );
    const after = await commitStats(ours.pool);
    results.send = wrkMeasurement(`HTTP send (${settings.connections} conn)`, r, cpu, [
      `${rowsPerCommit(before, after)} rows per commit`,
    ]);
  }

  if (wanted('send-tls')) {
    // The same send over HTTPS (ADMP_HTTP_TLS_*, a P-256 certificate of a private CA;
    // wrk negotiates HTTP/1.1), from a second server on the same database.
    const ca = await createTestCa('ADMP bench CA');
    cleanups.push(async () => ca.remove());
    const files = await ca.issue('127.0.0.1');
    const tlsServer = await startServer(ours.url, serverEnv, log, serverRoot, { ...files, ca: ca.caFile });
    retireLater(() => tlsServer.stop());
    const tlsGroups: CpuGroups = { ...groups, server: tlsServer.pid };
    log(`HTTPS send: warm-up ${settings.warmupSeconds} s`);
    await wrkSend(tlsServer.url, sender.token, {
      connections: settings.connections,
      seconds: settings.warmupSeconds,
      recipients: settings.recipients,
    });
    await settle(ours.pool, ['message']);
    log(`HTTPS send: wrk over TLS, ${settings.connections} connections, ${S} s`);
    const { result: r, cpu } = await measured(tlsGroups, () =>
      wrkSend(tlsServer.url, sender.token, {
        connections: settings.connections,
        seconds: S,
        recipients: settings.recipients,
      }),
    );
    await tlsServer.stop();
    results['send-tls'] = wrkMeasurement(
      `HTTPS send (${settings.connections} conn)`,
      r,
      cpu,
      results.send ? [`${(r.perSec / results.send.perSec).toFixed(2)} × plain HTTP send in this run`] : [],
    );
  }

  let quotaBaseline: Measurement | undefined;
  if (wanted('send-quota')) {
    // The same send through a server whose policy counts every send against two rate
    // quotas (per sender, per pair; out of reach), with ACTIVE_QUOTA_KEYS other keys
    // active, paired with the plain server in alternating windows (bench/quota.ts).
    const policy = await quotaPolicyFile('sender', cleanups);
    await seedQuotaKeys(ours.pool);
    const quotaServer = await startServer(ours.url, { ...serverEnv, ADMP_POLICY_FILE: policy }, log, serverRoot);
    retireLater(() => quotaServer.stop());
    const urls = { plain: server.url, quota: quotaServer.url };
    // The server not under load in a window is its own group: it still takes wake-ups.
    const pairGroups: Record<'plain' | 'quota', CpuGroups> = {
      plain: { ...groups, 'other server': quotaServer.pid },
      quota: { ...groups, server: quotaServer.pid, 'other server': server.pid },
    };
    const load = (side: 'plain' | 'quota', seconds: number) =>
      wrkSend(urls[side], sender.token, {
        connections: settings.connections,
        seconds,
        recipients: settings.recipients,
      });
    // Both warmed, and the quota server as long as the plain one ran before (the send
    // step's warm-up and window): a fresh process is slower per request for a while.
    const ranBefore = wanted('send') ? settings.warmupSeconds + S : 0;
    log(
      `HTTP send with rate quotas: warm-up ${settings.warmupSeconds + ranBefore} s, plain ${settings.warmupSeconds} s`,
    );
    await load('quota', settings.warmupSeconds + ranBefore);
    await load('plain', settings.warmupSeconds);
    await settle(ours.pool, ['message', 'rate_quota']);
    log(
      `HTTP send with rate quotas: 2 limit rules, ${ACTIVE_QUOTA_KEYS} other active keys, wrk, ` +
        `windows plain, quotas, quotas, plain of ${Math.max(1, Math.round(S / 2))} s`,
    );
    const commits = { plain: { commits: 0, rows: 0 }, quota: { commits: 0, rows: 0 } };
    const pair = await quotaPair(S, async (side, seconds) => {
      const before = await commitStats(ours.pool);
      const { result, cpu } = await measured(pairGroups[side], () => load(side, seconds));
      const after = await commitStats(ours.pool);
      commits[side] = {
        commits: commits[side].commits + after.commits - before.commits,
        rows: commits[side].rows + after.rows - before.rows,
      };
      return { result, cpu };
    });
    const perCommit = (side: 'plain' | 'quota') =>
      `${rowsPerCommit({ commits: 0, rows: 0 }, commits[side])} rows per commit`;
    await quotaServer.stop();
    const keys = (await ours.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM rate_quota')).rows[0]!.n;
    quotaBaseline = wrkMeasurement(
      `HTTP send beside the quota windows (${settings.connections} conn)`,
      pair.plain.result,
      pair.plain.cpu,
      [perCommit('plain')],
    );
    results['send-quota'] = wrkMeasurement(
      `HTTP send with rate quotas (${settings.connections} conn)`,
      pair.quota.result,
      pair.quota.cpu,
      [
        `${keys} keys in rate_quota after the window`,
        perCommit('quota'),
        `${(pair.quota.result.perSec / pair.plain.result.perSec).toFixed(3)} × plain HTTP send in the windows beside it`,
      ],
    );
  }

  if (wanted('pgbench')) {
    const db = await pg.database('pgbench', { migrate: true });
    retireLater(() => db.drop());
    await settle(db.pool, ['message']);
    log(
      `pgbench: single-row INSERT of the same row, -c ${settings.connections} -j ${Math.min(settings.connections, 2)} -T ${S} -M prepared`,
    );
    await waitQuiet(groups);
    const run = pgbenchInsert(db.url, { clients: settings.connections, seconds: S, recipients: settings.recipients });
    cleanups.push(async () => run.kill());
    const close = cpuWindow({ ...groups, pgbench: run.pid });
    const r = await run.done;
    const cpu = close();
    const notes = r.failed ? [`${r.failed} failed transactions`] : [];
    results.pgbench = {
      label: `pgbench INSERT (${settings.connections} clients)`,
      unit: 'tx/s',
      perSec: r.perSec,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      per: 'transaction',
      errors: r.failed,
      cpu,
      notes: [...notes, ...noisy(cpu)],
      raw: r,
    };
  }

  let boss: BossBench | undefined;
  let bossDb: BenchDatabase | undefined;
  if (wanted('boss-send') || wanted('boss-fetch')) {
    const db = (bossDb = await pg.database('pgboss'));
    retireLater(() => db.drop());
    const running = (boss = await startBoss(db.url, settings.poolMax, log));
    retireLater(() => running.stop());
    log(`pg-boss ${boss.version} started (pool max ${settings.poolMax}, default maintenance)`);
  }

  if (boss && wanted('boss-send')) {
    await boss.send(settings.connections, settings.warmupSeconds);
    await settle(bossDb!.pool, ['pgboss.job']);
    log(`pg-boss send(): ${settings.connections} in flight, ${S} s`);
    const { result: r, cpu } = await measured(groups, () => boss!.send(settings.connections, S));
    results['boss-send'] = loopMeasurement(
      `pg-boss ${boss.version} send (${settings.connections} in flight)`,
      'jobs/s',
      'send',
      r,
      cpu,
      [],
    );
  }

  // Two consumer loops over the same backlog size: pull, then one batch ack (two calls
  // per batch); and pull carrying the previous batch's acks (one call per batch).
  const pullModes = [
    {
      step: 'pull' as const,
      ackInPull: false,
      label: 'HTTP pull+ack',
      how: `pull max ${settings.batch} + one batch ack`,
    },
    {
      step: 'pull-next' as const,
      ackInPull: true,
      label: 'HTTP pull carrying its acks',
      how: `pull max ${settings.batch} carrying the previous batch's acks`,
    },
  ];
  for (const mode of pullModes.filter((m) => wanted(m.step))) {
    log(
      `${mode.label}: ${settings.backlog} messages prefilled into ${settings.pullInboxes} inboxes via enqueue_message, ` +
        `then ${settings.consumers} consumers, ${mode.how}, ${S} s`,
    );
    const {
      prefillRate,
      result: { result: r, cpu },
    } = await pullStep(ours.pool, server.url, { ...settings, inboxes, seconds: S, ackInPull: mode.ackInPull }, (run) =>
      measured(groups, run),
    );
    results[mode.step] = loopMeasurement(
      `${mode.label} (${settings.consumers} consumers, batch ${settings.batch})`,
      'msgs/s',
      'cycle',
      r,
      cpu,
      [`prefill ${settings.backlog} via enqueue_message at ${Math.round(prefillRate)} rows/s`],
    );
  }

  if (boss && wanted('boss-fetch')) {
    log(`pg-boss: prefilling ${settings.backlog} jobs with insert() in batches of 1000`);
    const prefillRate = await boss.prefill(settings.backlog);
    await settle(bossDb!.pool, ['pgboss.job']);
    await boss.fetchComplete(settings.consumers, settings.batch, settings.warmupSeconds);
    log(`pg-boss fetch({batchSize: ${settings.batch}}) + complete(ids): ${settings.consumers} workers, ${S} s`);
    const { result: r, cpu } = await measured(groups, () => boss!.fetchComplete(settings.consumers, settings.batch, S));
    results['boss-fetch'] = loopMeasurement(
      `pg-boss ${boss.version} fetch+complete (${settings.consumers} workers, batch ${settings.batch})`,
      'jobs/s',
      'cycle',
      r,
      cpu,
      [`prefill ${settings.backlog} via insert() at ${Math.round(prefillRate)} jobs/s`],
    );
  }

  let ingest: Awaited<ReturnType<typeof ingestBench>> | undefined;
  if (wanted('ingest') || wanted('ingest-quota')) {
    for (const f of earlier.reverse()) await f();
    ingest = await ingestBench(
      {
        pg,
        log,
        cleanups,
        serverRoot,
        measured: async (server, fn, extra = {}) => {
          const { result, cpu } = await measured({ postgres, server, bench: process.pid, ...extra }, fn);
          return { result, cpu };
        },
      },
      {
        seconds: S,
        warmupSeconds: settings.warmupSeconds,
        rounds: settings.ingestRounds,
        connections: settings.ingestConnections,
        poolMax: settings.poolMax,
        workers: settings.ingestWorkers,
        // With ingest-quota alone, only the case it is compared with.
        only: wanted('ingest') ? settings.ingestCases : quotaBaselineLabel(settings.ingestWorkers[0]!),
        quota: wanted('ingest-quota'),
      },
    );
    for (const m of ingest.measurements) m.notes.push(...noisy(m.cpu));
  }

  const targets: Target[] = [
    {
      path: `HTTP send vs pgbench single-row INSERT, ${settings.connections} clients`,
      ours: results.send,
      baseline: results.pgbench,
      min: 0.7,
    },
    { path: 'HTTP send vs pg-boss send', ours: results.send, baseline: results['boss-send'], min: 2 },
    {
      path: `HTTP send with rate quotas (${ACTIVE_QUOTA_KEYS} active keys) vs plain HTTP send`,
      ours: results['send-quota'],
      baseline: quotaBaseline,
      min: 0.95,
    },
    {
      path: `HTTP pull+ack (batch ${settings.batch}) vs pg-boss fetch+complete`,
      ours: results.pull,
      baseline: results['boss-fetch'],
      min: 1,
    },
    {
      path: `HTTP pull carrying its acks (batch ${settings.batch}) vs pg-boss fetch+complete`,
      ours: results['pull-next'],
      baseline: results['boss-fetch'],
      min: 1,
    },
    ...(ingest?.targets ?? []),
  ];
  const measurements = [
    ...STEPS.flatMap((s) => (results[s] ? [results[s]!] : [])),
    ...(quotaBaseline ? [quotaBaseline] : []),
    ...(ingest?.measurements ?? []),
  ];
  console.log(
    `\n## Targets\n\n${targetTable(targets)}\n\n## CPU per operation (robust to other load on the box)\n\n${cpuTable(targets)}\n\n## Measurements\n\n${detailTable(measurements)}\n`,
  );
  for (const m of measurements) for (const n of m.notes) console.log(`- ${m.label}: ${n}`);
  const path = writeResults({
    started: started.toISOString(),
    environment: {
      node: process.version,
      postgres: serverVersion,
      postgresSource: pg.source,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      pgBoss: boss?.version,
    },
    settings,
    server: { logLevel: 'warn', root: serverRoot ?? '.', ...serverEnv },
    targets: targets.map((t) => ({
      path: t.path,
      ours: t.ours?.perSec,
      baseline: typeof t.baseline === 'number' ? t.baseline : t.baseline?.perSec,
      ratio: ratioOf(t),
      min: t.min,
      met: metOf(t),
      cpuNormalizedRatio: cpuRatioOf(t),
    })),
    measurements: Object.fromEntries(
      [...Object.entries(results), ...(ingest?.measurements ?? []).map((m) => [m.label, m] as const)].map(([k, m]) => [
        k,
        { ...m, cpuText: formatCpu(m.cpu), cpuUsPerOp: cpuPerOp(m) },
      ]),
    ),
  });
  console.log(`\nresults: ${path}`);
}

try {
  await main();
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
