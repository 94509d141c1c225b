// Opens the database the config names: DATABASE_URL, or the embedded PostgreSQL
// under <dataDir>/pg when none is set. Migrates when asked.
import { join } from 'node:path';
import type pg from 'pg';
import type { Config } from '../config.js';
import { createPool } from './pool.js';
import { startEmbedded, type EmbeddedDatabase } from './embedded.js';
import { migrate } from './migrate.js';

export interface Database {
  readonly pool: pg.Pool;
  readonly url: string;
  /** Set when the embedded PostgreSQL was started for this process. */
  readonly embedded?: EmbeddedDatabase;
  close(): Promise<void>;
}

export async function openDatabase(
  config: Config,
  options: { migrate?: boolean; poolMax?: number } = {},
): Promise<Database> {
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbedded({ dataDir: join(config.dataDir, 'pg'), port: config.embeddedPgPort });
  const url = config.databaseUrl || embedded!.url;
  const pool = createPool(url, options.poolMax ?? config.pgPoolMax);
  try {
    if (options.migrate) await migrate(pool);
  } catch (err) {
    await pool.end().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
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
