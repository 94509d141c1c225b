// The database half of /readyz: reachable, schema current, and the message table
// writable now. A session holding a conflicting table lock (LOCK TABLE, a long
// ALTER) stalls every enqueue and claim while plain reads still answer, so the check
// asks for the lock a write takes (ROW EXCLUSIVE) and gives up after a short wait.
import type pg from 'pg';
import { inTransaction } from './pool.js';
import { pendingMigrations } from './migrate.js';

/** How long /readyz waits for the message table's write lock. */
const LOCK_WAIT_MS = 500;

/** Undefined when ready; otherwise why not. Throws when the database cannot be reached. */
export async function databaseNotReady(pool: pg.Pool): Promise<string | undefined> {
  const pending = await pendingMigrations(pool);
  if (pending.length > 0) return `pending migrations: ${pending.join(', ')}`;
  return inTransaction(pool, async (c) => {
    await c.query(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
    try {
      await c.query('LOCK TABLE message IN ROW EXCLUSIVE MODE');
      return undefined;
    } catch (err) {
      if ((err as { code?: string }).code === '55P03') return 'message table locked by another session';
      throw err;
    }
  });
}
