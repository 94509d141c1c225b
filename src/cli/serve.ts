// admp serve | migrate | config
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { configMarkdown, loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { databaseStartLog, startServer } from '../app/server.js';
import { prepareSharedDatabase, withAdmin } from '../app/open.js';
import { print } from './output.js';
import { STOP_MARGIN_MS, stopWithin } from '../app/shutdown.js';

/**
 * The process exits within `deadlineMs` of the first signal whatever `stop` waits on;
 * `onDeadline` runs when the stop outlived it, just before the exit.
 */
function onSignals(log: Logger, deadlineMs: number, stop: () => Promise<void>, onDeadline?: () => void): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'shutdown', signal }, 'shutting down');
    stopWithin(stop, deadlineMs).then(
      (outcome) => {
        if (outcome === 'stopped') return process.exit(0);
        log.error(
          { event: 'shutdown', outcome: 'timeout', ms: deadlineMs },
          'shutdown did not finish in time; exiting',
        );
        onDeadline?.();
        process.exit(1);
      },
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  // Under `npm start` (npm runs the script as `exec node …`, so SIGTERM to npm reaches us)
  // the server lives as long as npm: an npm that was SIGKILLed leaves no server behind.
  if (process.env.npm_lifecycle_event === 'start') {
    const parent = process.ppid;
    setInterval(() => process.ppid !== parent && handler('parent exited'), 1000).unref();
  }
}

async function serveOne(config: Config, log: Logger): Promise<void> {
  const server = await startServer(config, log);
  onSignals(log, config.shutdownGraceMs + STOP_MARGIN_MS, () => server.stop());
}

/**
 * ADMP_WORKERS > 1: this process owns the database (embedded, if that is the
 * setup) and the migrations, then forks workers that share the HTTP and LMTP
 * listeners (node:cluster). A worker that dies is replaced after a short pause.
 */
async function servePrimary(config: Config, log: Logger): Promise<void> {
  const db = await prepareSharedDatabase(config, databaseStartLog(log));
  const env = { DATABASE_URL: db.url, ADMP_MIGRATE_ON_START: 'false' };
  let stopping = false;
  const fork = () => cluster.fork(env);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ event: 'worker_exit', pid: worker.process.pid, code, signal }, 'worker died; starting another');
    setTimeout(fork, 1000).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();
  log.info({ event: 'start', workers: config.workers }, `started ${config.workers} workers`);
  const workers = () => Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  const killWorkers = () => {
    for (const w of workers()) w.process.kill('SIGKILL');
  };
  // Each worker has its own deadline (above); the database's stop then gets one more margin.
  onSignals(
    log,
    config.shutdownGraceMs + 2 * STOP_MARGIN_MS,
    async () => {
      stopping = true;
      await Promise.all(
        workers().map(
          (w) =>
            new Promise<void>((ok) => {
              w.once('exit', () => ok());
              w.process.kill('SIGTERM');
            }),
        ),
      );
      await db.stop();
    },
    killWorkers,
  );
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the agent API, the Rspamd ingress endpoint and the LMTP receiver')
    .action(async () => {
      const config = loadConfig();
      const log = createLogger(config.logLevel);
      if (config.workers > 1 && cluster.isPrimary) await servePrimary(config, log);
      else await serveOne(config, log);
    });

  program
    .command('migrate')
    .description('apply pending database migrations (safe to run twice or concurrently)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      await withAdmin(
        async (admin) => {
          const applied = await admin.migrate();
          print(opts.json, { applied }, () =>
            applied.length ? `applied: ${applied.join(', ')}` : 'schema is current',
          );
        },
        { ...config, migrateOnStart: false },
      );
    });

  program
    .command('config')
    .description('validate and print the effective configuration')
    .option('--json', 'print JSON')
    .option('--markdown', 'print the configuration reference table')
    .action((opts: { json?: boolean; markdown?: boolean }) => {
      if (opts.markdown) return print(false, null, configMarkdown);
      const config = loadConfig();
      const shown = {
        ...config,
        databaseUrl: config.databaseUrl.replace(/:[^:@/]*@/, ':***@'),
        ingressToken: config.ingressToken ? '***' : '',
        metricsToken: config.metricsToken ? '***' : '',
        adminToken: config.adminToken ? '***' : '',
      };
      print(opts.json, shown, () =>
        Object.entries(shown)
          .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
          .join('\n'),
      );
    });
}
