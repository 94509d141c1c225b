// Opens the database the config names: DATABASE_URL, or the embedded PostgreSQL
// under <dataDir>/pg when none is set. Migrates when asked.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Config } from '../config.js';
import { toAdmpError } from '../errors.js';
import { createPool, fitIdleTimeout } from './pool.js';
import { startEmbedded, type EmbeddedDatabase } from './embedded.js';
import { migrate } from './migrate.js';

export interface Database {
  readonly pool: pg.Pool;
  readonly url: string;
  /** Set when the embedded PostgreSQL was started for this process. */
  readonly embedded?: EmbeddedDatabase;
  close(): Promise<void>;
}

export interface OpenOptions {
  migrate?: boolean;
  poolMax?: number;
  /** Retry an unreachable DATABASE_URL for up to config.dbStartWaitSec, reporting each failed attempt. */
  onRetry?: (err: Error, attempt: number, delayMs: number) => void;
  /** Told when an embedded PostgreSQL already running on the data directory is joined or replaced. */
  onNotice?: (message: string) => void;
}

export async function openDatabase(config: Config, options: OpenOptions = {}): Promise<Database> {
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbedded({
        dataDir: join(config.dataDir, 'pg'),
        port: config.embeddedPgPort,
        onNotice: options.onNotice,
      });
  const url = config.databaseUrl || embedded!.url;
  try {
    if (options.onRetry) await waitForDatabase(url, config.dbStartWaitSec * 1000, options.onRetry);
    // Migrations may run long (an index on a big table): their own connection, without the deadlines.
    if (options.migrate) {
      const once = createPool(url, 1);
      await migrate(once).finally(() => once.end().catch(() => undefined));
    }
  } catch (err) {
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
  const pool = createPool(url, options.poolMax ?? config.pgPoolMax, {
    statementMs: config.pgStatementTimeoutMs,
    lockMs: config.pgLockTimeoutMs,
  });
  await fitIdleTimeout(pool).catch(() => undefined);
  return {
    pool,
    url,
    embedded,
    async close() {
      await pool.end().catch(() => undefined);
      await embedded?.stop();
    },
  };
}

/**
 * Waits until PostgreSQL accepts a connection: 0.5 s, 1 s, 2 s … at most 10 s apart,
 * for up to `waitMs`. Only a database that is not there yet (refused, shutting down,
 * starting up, unknown host) is retried; anything else (a bad URL) fails at once.
 */
export async function waitForDatabase(
  url: string,
  waitMs: number,
  onRetry: (err: Error, attempt: number, delayMs: number) => void,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      const delay = Math.min(10_000, 500 * 2 ** (attempt - 1));
      if (toAdmpError(err).code !== 'storage_unavailable' || Date.now() + delay > deadline) throw err;
      onRetry(err as Error, attempt, delay);
      await sleep(delay);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
