// Composition root of `admp serve`: opens the database, wires the core to its
// adapters, starts listeners and background jobs, and shuts down in order.
import type { FastifyInstance } from 'fastify';
import { parseListen, type Config } from './config.js';
import type { Logger } from './log.js';
import { openDatabase, type Database } from './db/connect.js';
import { createDirectory, type Directory } from './queue/directory.js';
import { createEnqueuer, type Enqueuer } from './queue/enqueue.js';
import { createInboxWaiter } from './queue/inbox-waiter.js';
import { createMailbox, type Mailbox } from './queue/mailbox.js';
import { createAuthenticator } from './http/auth.js';
import { buildApp } from './http/app.js';
import { startSweeper } from './jobs/sweeper.js';
import { Resolver } from 'node:dns/promises';
import type { SMTPServer } from 'smtp-server';
import { findValidKey } from './db/keys.js';
import { createKeyResolver } from './keys/resolver.js';
import { createPolicySource, readPolicyFile } from './policy/store.js';
import { createPipeline, type Pipeline } from './ingress/pipeline.js';
import { createLmtpServer } from './lmtp/server.js';

/** Everything `serve` runs, minus the listeners: what tests drive with app.inject(). */
export interface Core {
  readonly app: FastifyInstance;
  readonly mailbox: Mailbox;
  readonly directory: Directory;
  readonly enqueuer: Enqueuer;
  readonly pipeline: Pipeline;
  stop(): Promise<void>;
}

/** Test seams: where the internet would be (partner JWKS fetches). */
export interface WireOptions { readonly keyDeps?: Omit<Parameters<typeof createKeyResolver>[1], 'db'> }

export async function wire(config: Config, db: Pick<Database, 'pool' | 'url'>, log: Logger, options: WireOptions = {}): Promise<Core> {
  const policyFile = readPolicyFile(config.policyFile);
  const waiter = await createInboxWaiter(db.url, (err) => log.warn({ err }, 'LISTEN connection lost; reconnecting'));
  const enqueuer = createEnqueuer(db.pool);
  const directory = createDirectory(db.pool, config);
  const mailbox = createMailbox({ pool: db.pool, config, directory, enqueuer, waiter });
  const auth = createAuthenticator(db.pool, config, async (domain, kid, agent) => {
    const key = await findValidKey(db.pool, domain, kid, new Date());
    return key && key.source === 'local' && key.agent === agent ? key.publicKey : undefined;
  });
  const dns = new Resolver({ timeout: config.dnsTimeoutMs, tries: 2 });
  if (config.dnsServers.length > 0) dns.setServers([...config.dnsServers]);
  const pipeline = createPipeline({
    pool: db.pool, enqueuer, config, directory,
    policy: createPolicySource(db.pool, policyFile),
    resolveKey: createKeyResolver(config, { db: db.pool, ...options.keyDeps }),
    dnsResolve: (name, rrtype) => dns.resolve(name, rrtype) as Promise<string[] | string[][]>,
  });
  const app = buildApp({ config, pool: db.pool, log, mailbox, directory, auth, pipeline });
  const sweeper = startSweeper(db.pool, log, config.reclaimIntervalMs, config.maxAttempts);
  return {
    app,
    mailbox,
    directory,
    enqueuer,
    pipeline,
    async stop() {
      await app.close();
      await sweeper.stop();
      await enqueuer.drain();
      await waiter.close();
    },
  };
}

export interface RunningServer {
  readonly core: Core;
  readonly lmtp?: SMTPServer;
  readonly db: Database;
  readonly httpUrl: string;
  stop(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  log.info({ event: 'start', database: config.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL under ${config.dataDir}/pg` },
    config.databaseUrl ? 'using PostgreSQL from DATABASE_URL' : `starting embedded PostgreSQL (data in ${config.dataDir}/pg)`);
  const db = await openDatabase(config, { migrate: config.migrateOnStart });
  const core = await wire(config, db, log);
  const httpUrl = await core.app.listen({ host: config.httpListen.host, port: config.httpListen.port });
  log.info({ event: 'listening', http: httpUrl }, `agent API listening on ${httpUrl}`);
  const lmtp = config.lmtpListen ? await listenLmtp(createLmtpServer({ config, log, pipeline: core.pipeline, directory: core.directory }), config.lmtpListen) : undefined;
  if (lmtp) log.info({ event: 'listening', lmtp: config.lmtpListen }, `LMTP receiver listening on ${config.lmtpListen}`);
  return {
    core,
    lmtp,
    db,
    httpUrl,
    async stop() {
      if (lmtp) await new Promise<void>((ok) => lmtp.close(() => ok()));
      await core.stop();
      await db.close();
    },
  };
}

async function listenLmtp(server: SMTPServer, listen: string): Promise<SMTPServer> {
  const { host, port } = parseListen(listen, 'ADMP_LMTP_LISTEN');
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  return server;
}
