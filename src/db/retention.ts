// Retention: finished messages (acked, dead) older than the retention period are deleted,
// with their dedupe keys, so the table holds the live queue plus a bounded history.
import pg from 'pg';
import { DELETED_COLUMNS, deleteDedupeKeys, type DeletedMessage } from './dedupe-keys.js';
import { deleteSearchEntries } from './message-search.js';
import { inTransaction } from './pool.js';

export interface Removed {
  messages: number;
  dedupeKeys: number;
}

/**
 * Deletes up to `batch` messages acked, or dead and expired, more than `olderThanSec` ago
 * (migrations/0010_retention.sql), oldest first, and their dedupe keys: a key's window is
 * its message's lifetime, so a late duplicate of a removed message is accepted as new. A
 * signed mail stays until its replay window has closed too (replayWindowOpen).
 * Both deletes share one short transaction (a pool: its own; a client: the caller's): a
 * key left without its message would answer a resend with the id of a message that no
 * longer exists.
 *
 * It never blocks a claim: claims lock only `delivered` rows, and these are `acked` or
 * `dead`. The outer DELETE re-checks the condition under the row lock, so a dead letter
 * redriven meanwhile stays. The same statements run on a single server, a hash-partitioned
 * table and Citus (the LIMIT subquery runs first, then the DELETE goes to the shards
 * holding those rows; the key delete joins on to_agent_id).
 */
/**
 * A signed mail inside its replay window (migrations/0013_replay_window.sql): its dedupe key
 * (kind 2, the replay key) is to be kept until keep_until, and the message with it, so a
 * copy accepted late still answers with this row. A primary-key probe per candidate, on the
 * candidate's own shard; the time is $3, a value, so no now() is compared with a column.
 */
const replayWindowOpen = (m: string): string =>
  `EXISTS (SELECT 1 FROM message_dedupe k
             WHERE k.to_agent_id = ${m}.to_agent_id AND k.key = '\\x02'::bytea || ${m}.source_fingerprint
               AND k.keep_until > $3)`;

export async function removeFinished(
  db: pg.Pool | pg.PoolClient,
  olderThanSec: number,
  batch: number,
): Promise<Removed> {
  const run = async (c: pg.PoolClient | pg.Pool): Promise<Removed> => {
    const gone = await c.query<DeletedMessage>(
      `DELETE FROM message m
        WHERE (m.id, m.to_agent_id) IN (
                SELECT id, to_agent_id FROM message f
                 WHERE status IN ('acked', 'dead') AND coalesce(acked_at, expires_at) < now() - make_interval(secs => $1)
                   AND NOT ${replayWindowOpen('f')}
                 ORDER BY coalesce(acked_at, expires_at)
                 LIMIT $2)
          AND m.status IN ('acked', 'dead') AND coalesce(m.acked_at, m.expires_at) < now() - make_interval(secs => $1)
          AND NOT ${replayWindowOpen('m')}
       RETURNING ${DELETED_COLUMNS}`,
      [olderThanSec, batch, new Date()],
    );
    const dedupeKeys = await deleteDedupeKeys(c, gone.rows);
    await deleteSearchEntries(c, gone.rows);
    return { messages: gone.rowCount ?? 0, dedupeKeys };
  };
  return db instanceof pg.Pool ? inTransaction(db, run) : run(db);
}
