// Composition root of `admp serve`: opens the database, wires the core to its
// adapters, starts listeners and background jobs, and shuts down in order.
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { openDatabase, type Database } from './db/connect.js';
import { createDirectory, type Directory } from './queue/directory.js';
import { createEnqueuer, type Enqueuer } from './queue/enqueue.js';
import { createInboxWaiter } from './queue/inbox-waiter.js';
import { createMailbox, type Mailbox } from './queue/mailbox.js';
import { createAuthenticator } from './http/auth.js';
import { buildApp } from './http/app.js';
import { startSweeper } from './jobs/sweeper.js';
import { findValidKey } from './db/keys.js';

/** Everything `serve` runs, minus the listeners: what tests drive with app.inject(). */
export interface Core {
  readonly app: FastifyInstance;
  readonly mailbox: Mailbox;
  readonly directory: Directory;
  readonly enqueuer: Enqueuer;
  stop(): Promise<void>;
}

export async function wire(config: Config, db: Pick<Database, 'pool' | 'url'>, log: Logger): Promise<Core> {
  const waiter = await createInboxWaiter(db.url, (err) => log.warn({ err }, 'LISTEN connection lost; reconnecting'));
  const enqueuer = createEnqueuer(db.pool);
  const directory = createDirectory(db.pool, config);
  const mailbox = createMailbox({ pool: db.pool, config, directory, enqueuer, waiter });
  const auth = createAuthenticator(db.pool, config, async (domain, kid, agent) => {
    const key = await findValidKey(db.pool, domain, kid, new Date());
    return key && key.source === 'local' && key.agent === agent ? key.publicKey : undefined;
  });
  const app = buildApp({ config, pool: db.pool, log, mailbox, directory, auth });
  const sweeper = startSweeper(db.pool, log, config.reclaimIntervalMs, config.maxAttempts);
  return {
    app,
    mailbox,
    directory,
    enqueuer,
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
  return {
    core,
    db,
    httpUrl,
    async stop() {
      await core.stop();
      await db.close();
    },
  };
}
