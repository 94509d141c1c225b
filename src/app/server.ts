// Composition root of `admp serve`: opens the database, wires the core to its
// adapters, starts listeners and background jobs, and shuts down in order.
import type { FastifyInstance } from 'fastify';
import type { SMTPServer } from 'smtp-server';
import type { Config, Listen } from '../config.js';
import type { Logger } from '../log.js';

import { serverSecret } from '../db/server-secret.js';
import { openDatabase, type Database, type OpenOptions } from '../db/connect.js';
import { createAdmin, type Admin } from '../admin/admin.js';
import { createDirectory, type Directory } from '../mailbox/directory.js';
import { createEnqueuer, type Enqueuer } from '../mailbox/batcher.js';
import { createQuotaLeases } from '../mailbox/quota-leases.js';
import { createInboxWaiter } from '../mailbox/inbox-waiter.js';
import { createMailbox, type Mailbox } from '../mailbox/mailbox.js';
import { createCredentials } from '../mailbox/credentials.js';
import { createHousekeeping } from '../mailbox/housekeeping.js';
import { createOutboundQueue } from '../mailbox/outbound-queue.js';
import { createKeyResolver } from '../keys/resolver.js';
import { configuredResolver } from '../keys/dns.js';
import { createPolicySource, readPolicyFile } from '../policy/store.js';
import { createQuotaGate } from '../policy/rate-quotas.js';
import { createPipeline } from '../ingress/pipeline.js';
import { createIngest, type Ingest } from '../ingress/ingest.js';
import { recordRefusals } from '../db/refusals.js';
import { createAuthenticator } from '../http/auth.js';
import { buildApp } from '../http/app.js';
import { listenMetrics } from '../http/metrics.js';
import { createLmtpServer } from '../lmtp/server.js';
import { startSweeper } from '../jobs/sweeper.js';
import { startRetention } from '../jobs/retention.js';
import { startQueueGauges } from '../jobs/queue-gauges.js';
import { startOutbound } from '../outbound/start.js';
import { startPushWorker } from '../webhooks/worker.js';
import { guardedDispatcher, type GuardedDispatcherOptions } from '../net/guarded-fetch.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { startTracing } from '../tracing.js';
import { closeHttp, closeLmtp, trackConnections } from './shutdown.js';
import { loadHttpsFiles, reloadTls, tlsMaterial, type SecureContextTarget } from '../http/tls.js';
import type { Resolver } from '../ingress/domain-auth.js';
import { createSmtpEdge } from '../smtp/edge.js';
import { createStorageOutage, type StorageOutage } from '../storage-outage.js';

/** Everything `serve` runs, minus the listeners: what tests drive with app.inject(). */
export interface Core {
  readonly app: FastifyInstance;
  readonly mailbox: Mailbox;
  readonly directory: Directory;
  readonly admin: Admin;
  readonly enqueuer: Enqueuer;
  readonly ingest: Ingest;
  readonly metrics: Metrics;
  /** DNS of the configured servers (ADMP_DNS_SERVERS), as mailauth and the pipeline ask it. */
  readonly dnsResolve: Resolver;
  readonly outage: StorageOutage;
  /** Ends long polls, closes the HTTP app (requests in flight get ADMP_SHUTDOWN_GRACE_MS), stops the jobs. */
  stop(): Promise<void>;
}

/** Test seams: where the internet would be (partner JWKS fetches, webhook hosts), and the ingress clock. */
export interface WireOptions {
  readonly keyDeps?: Omit<Parameters<typeof createKeyResolver>[1], 'db'>;
  /** Name resolution of webhook hosts (tests map a name to loopback). */
  readonly pushDeps?: Pick<GuardedDispatcherOptions, 'lookup'>;
  /** Unix seconds the mail roads judge freshness by (tests move time instead of waiting for an MTA's retry). */
  readonly ingressNow?: () => number;
}

export async function wire(
  config: Config,
  db: Pick<Database, 'pool' | 'url'>,
  log: Logger,
  options: WireOptions = {},
): Promise<Core> {
  const policyFile = readPolicyFile(config.policyFile);
  const https = loadHttpsFiles(config, log);
  const metrics = createMetrics({ pool: db.pool, max: config.pgPoolMax });
  const outage = createStorageOutage(log);
  const waiter = await createInboxWaiter(db.url, (up, err) => {
    metrics.wakeupListenerUp.set(up ? 1 : 0);
    if (up) log.info({ event: 'wakeup_listener', state: 'up' }, 'long-poll wake-ups listening');
    else
      log.warn(
        { event: 'wakeup_listener', state: 'down', error: err?.message },
        'long-poll wake-up connection lost: pulls poll once a second while it reconnects',
      );
  });
  // This instance's blocks of the large quotas' units, shared by both batchers.
  const leases = createQuotaLeases(db.pool, () => Date.now() * 1000);
  const enqueuer = createEnqueuer(db.pool, { metrics, leases });
  // Mail has its own batcher: it may wait to fill a commit, which an agent waiting
  // for its 201 should not.
  const mailEnqueuer = createEnqueuer(db.pool, { metrics, leases, fillWaitMs: config.ingestBatchWaitMs });
  const directory = createDirectory(db.pool, config);
  const policy = createPolicySource(db.pool, policyFile);
  const quotas = createQuotaGate({ policy, metrics, log });
  const mailbox = createMailbox({ pool: db.pool, config, directory, enqueuer, waiter, quotas, metrics });
  const admin = createAdmin(db.pool, config, policy, (fn) => waiter.watch(fn));
  const auth = createAuthenticator(createCredentials(db.pool), config);
  // The key of the bounce tags on our return path, the same in every instance.
  const bounceSecret = await serverSecret(db.pool, 'bounce_tag');
  const dns = configuredResolver({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs });
  const dnsResolve: Resolver = (name, rrtype) => dns.resolve(name, rrtype) as Promise<string[] | string[][]>;
  const pipeline = createPipeline({
    pool: db.pool,
    enqueuer: mailEnqueuer,
    config,
    directory,
    metrics,
    policy,
    quotas,
    resolveKey: createKeyResolver(config, { db: db.pool, metrics, ...options.keyDeps }),
    dnsResolve,
    bounceSecret,
    now: options.ingressNow,
  });
  const ingest = createIngest({
    pipeline,
    budgetMs: config.ingressBudgetMs,
    log,
    metrics,
    outage,
    recordRefusals: (rows) => recordRefusals(db.pool, rows),
  });
  const app = buildApp({
    config,
    admin,
    log,
    mailbox,
    webhooks: admin.webhooks,
    auth,
    ingest,
    metrics,
    outage,
    listening: () => waiter.listening,
    ...(https ? { tls: tlsMaterial(https) } : {}),
  });
  if (https) trackConnections(app.server);
  const tlsReload = https
    ? reloadTls(app.server as unknown as SecureContextTarget, https, config.httpTlsReloadMs)
    : undefined;
  const housekeeping = createHousekeeping(db.pool, config);
  const sweeper = startSweeper(housekeeping, log, config.reclaimIntervalMs, metrics, outage);
  const gauges = startQueueGauges(housekeeping, metrics, log, config.metricsRefreshMs, outage);
  const retention = startRetention(
    housekeeping,
    log,
    { days: config.retentionDays, batch: config.retentionBatch },
    metrics,
  );
  const outbound = startOutbound(config, createOutboundQueue(db.pool, db.url, config, bounceSecret), log, metrics);
  // Webhook URLs are chosen by agents: connections go through the SSRF guard.
  const pushDispatcher = guardedDispatcher({ allow: config.fetchAllow, ...options.pushDeps });
  const push = config.webhooks
    ? startPushWorker({
        endpoints: admin.webhooks,
        mailbox,
        watch: (f) => waiter.watch(f),
        config,
        log,
        dispatcher: pushDispatcher,
        metrics,
        outage,
      })
    : undefined;
  return {
    app,
    outage,
    mailbox,
    directory,
    admin,
    enqueuer,
    ingest,
    metrics,
    dnsResolve,
    async stop() {
      metrics.shuttingDown.set(1);
      tlsReload?.close();
      await waiter.close();
      await closeHttp(app, config.shutdownGraceMs);
      await sweeper.stop();
      await retention?.stop();
      await gauges.stop();
      await outbound?.stop();
      await push?.stop();
      await pushDispatcher.close();
      await Promise.all([enqueuer.drain(), mailEnqueuer.drain()]);
    },
  };
}

/** What `admp serve` says while it waits for PostgreSQL at start, or finds one already running. */
export function databaseStartLog(log: Logger): Pick<OpenOptions, 'onRetry' | 'onNotice'> {
  return {
    onRetry: (err, attempt, delayMs) =>
      log.warn(
        { event: 'database_wait', attempt, error: err.message, retry_ms: delayMs },
        `PostgreSQL not reachable yet (${err.message}); retrying in ${(delayMs / 1000).toFixed(1)} s`,
      ),
    onNotice: (message) => log.warn({ event: 'embedded_database' }, message),
  };
}

export interface RunningServer {
  readonly core: Core;
  readonly lmtp?: SMTPServer;
  /** The standalone SMTP edge, when ADMP_SMTP_LISTEN is set. */
  readonly smtp?: SMTPServer;
  readonly db: Database;
  readonly httpUrl: string;
  /** Where /metrics is served when ADMP_METRICS_LISTEN gives it its own listener. */
  readonly metricsUrl?: string;
  stop(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  log.info(
    {
      event: 'start',
      database: config.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL under ${config.dataDir}/pg`,
    },
    config.databaseUrl
      ? 'using PostgreSQL from DATABASE_URL'
      : `starting embedded PostgreSQL (data in ${config.dataDir}/pg)`,
  );
  const stopTracing = await startTracing(process.env, log);
  const db = await openDatabase(config, { migrate: config.migrateOnStart, ...databaseStartLog(log) });
  const core = await wire(config, db, log);
  const metricsListener = config.metricsListen
    ? await listenMetrics(core.metrics.registry, config.metricsListen, config.metricsToken)
    : undefined;
  if (metricsListener)
    log.info({ event: 'listening', metrics: metricsListener.url }, `metrics on ${metricsListener.url}/metrics`);
  const httpUrl = await core.app.listen({ host: config.httpListen.host, port: config.httpListen.port });
  log.info({ event: 'listening', http: httpUrl }, `agent API listening on ${httpUrl}`);
  const lmtp = config.lmtpListen
    ? await listenLmtp(
        createLmtpServer({ config, log, ingest: core.ingest, directory: core.directory }),
        config.lmtpListen,
      )
    : undefined;
  if (lmtp)
    log.info(
      { event: 'listening', lmtp: `${config.lmtpListen!.host}:${config.lmtpListen!.port}` },
      `LMTP receiver listening on ${config.lmtpListen!.host}:${config.lmtpListen!.port}`,
    );
  const smtp = config.smtpListen ? await listenSmtpEdge(core, config, log) : undefined;
  return {
    core,
    lmtp,
    smtp,
    db,
    httpUrl,
    metricsUrl: metricsListener?.url,
    async stop() {
      // Both listeners stop accepting at once and drain within the grace period; the
      // pool closes only after the last transaction in flight has committed.
      await Promise.all([core.stop(), lmtp ? closeLmtp(lmtp) : undefined, smtp ? closeLmtp(smtp) : undefined]);
      await metricsListener?.close();
      await stopTracing();
      await db.close();
      log.info({ event: 'stopped' }, 'shut down');
    },
  };
}

async function listenLmtp(server: SMTPServer, { host, port }: Listen): Promise<SMTPServer> {
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  return server;
}

async function listenSmtpEdge(core: Core, config: Config, log: Logger): Promise<SMTPServer> {
  const { host, port } = config.smtpListen!;
  const edge = createSmtpEdge({
    config,
    log,
    ingest: core.ingest,
    directory: core.directory,
    dnsResolve: core.dnsResolve,
    metrics: core.metrics,
  });
  await edge.listen(port, host);
  log.info({ event: 'listening', smtp: `${host}:${port}` }, `SMTP edge listening on ${host}:${port}`);
  return edge.server;
}
