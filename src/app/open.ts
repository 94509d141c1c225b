// What a one-shot command (the CLI, `admp doctor`) opens: the database the config
// names, and the Admin service over it.
import { loadConfig, type Config } from '../config.js';
import { openDatabase, type OpenOptions } from '../db/connect.js';
import { createAdmin, type Admin } from '../admin/admin.js';
import { createPolicySource, readPolicyFile } from '../policy/store.js';

/** Runs fn with the Admin service over the configured database, then closes it. */
export async function withAdmin<T>(
  fn: (admin: Admin, config: Config) => Promise<T>,
  config = loadConfig(),
): Promise<T> {
  const db = await openDatabase(config, { migrate: config.migrateOnStart, poolMax: 2 });
  try {
    const policy = createPolicySource(db.pool, readPolicyFile(config.policyFile));
    return await fn(createAdmin(db.pool, config, policy), config);
  } finally {
    await db.close();
  }
}

/**
 * Opens (and migrates) the database for worker processes to share, then closes this
 * process's pool: the primary of ADMP_WORKERS > 1 keeps only the embedded server.
 */
export async function prepareSharedDatabase(
  config: Config,
  startLog: Pick<OpenOptions, 'onRetry' | 'onNotice'> = {},
): Promise<{ url: string; stop(): Promise<void> }> {
  const db = await openDatabase(config, { migrate: config.migrateOnStart, poolMax: 1, ...startLog });
  await db.pool.end();
  return { url: db.url, stop: async () => void (await db.embedded?.stop()) };
}
