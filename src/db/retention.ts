// Retention: finished messages older than the retention period are deleted, with their
// dedupe keys and search entries, so the table holds the live queue plus a bounded history.
import pg from 'pg';
import { DELETED_COLUMNS, deleteDedupeKeys, type DeletedMessage } from './dedupe-keys.js';
import { deleteSearchEntries } from './message-search.js';
import { inTransaction } from './pool.js';

export interface Removed {
  messages: number;
  dedupeKeys: number;
}

export interface RetentionLimits {
  /** A finished message goes this long after it finished (ADMP_RETENTION_DAYS). */
  readonly olderThanSec: number;
  /** An outbound message stays at least this long after its last attempt: the life of its bounce tag. */
  readonly returnPathSec: number;
}

/**
 * A signed mail inside its replay window (migrations/0013_replay_window.sql): its dedupe key
 * (kind 2, the replay key) is to be kept until keep_until, and the message with it, so a
 * copy accepted late still answers with this row. A primary-key probe per candidate, on the
 * candidate's own shard; the time is $4, a value, so no now() is compared with a column.
 */
const replayWindowOpen = (m: string): string =>
  `EXISTS (SELECT 1 FROM message_dedupe k
             WHERE k.to_agent_id = ${m}.to_agent_id AND k.key = '\\x02'::bytea || ${m}.source_fingerprint
               AND k.keep_until > $4)`;

/** Outbound mail that ended: only the outbound worker and delivery reports set these statuses. */
const outboundEnded = (m: string): string => `${m}.status IN ('sent', 'failed')`;

/**
 * When a message finished, as indexed by message_retention (migrations/0023): an acked one
 * at its ack, a dead letter at its expiry (it died then or earlier), outbound mail that
 * ended `sent` or `failed` at its last attempt, whose claim set next_attempt_at past the
 * attempt's end. The expression must stay the index's, for the index to serve it.
 */
const finishedAt = (m: string): string =>
  `(CASE WHEN ${outboundEnded(m)} THEN ${m}.next_attempt_at ELSE coalesce(${m}.acked_at, ${m}.expires_at) END)`;

/**
 * Finished past the retention period, and nothing still needs it: an outbound message's
 * bounce tag has expired (a delivery report may come days after `sent` and must find its
 * message), a signed mail's replay window has closed. Times are values ($1, $3, $4) or
 * now() minus a value, never a stable function of a column (Citus refuses those in a DELETE).
 */
const removable = (m: string): string =>
  `${m}.status IN ('acked', 'dead', 'sent', 'failed')
   AND ${finishedAt(m)} < now() - make_interval(secs => $1)
   AND (NOT ${outboundEnded(m)} OR ${m}.next_attempt_at < now() - make_interval(secs => $3))
   AND NOT ${replayWindowOpen(m)}`;

/**
 * Deletes up to `batch` finished messages past `limits` (see removable), oldest first,
 * and their dedupe keys and search entries: a key's window is its message's lifetime, so
 * a late duplicate of a removed message is accepted as new.
 * All deletes share one short transaction (a pool: its own; a client: the caller's): a
 * key left without its message would answer a resend with the id of a message that no
 * longer exists.
 *
 * It never blocks a claim: claims lock only `delivered` rows and the outbound worker only
 * `queued` ones; these are `acked`, `dead`, `sent` or `failed`. The outer DELETE re-checks
 * the condition under the row lock, so a dead letter redriven meanwhile stays. The same
 * statements run on a single server, a hash-partitioned table and Citus (the LIMIT
 * subquery runs first, then the DELETE goes to the shards holding those rows; the key
 * delete joins on to_agent_id).
 */
export async function removeFinished(
  db: pg.Pool | pg.PoolClient,
  limits: RetentionLimits,
  batch: number,
): Promise<Removed> {
  const run = async (c: pg.PoolClient | pg.Pool): Promise<Removed> => {
    const gone = await c.query<DeletedMessage>(
      `DELETE FROM message m
        WHERE (m.id, m.to_agent_id) IN (
                SELECT id, to_agent_id FROM message f
                 WHERE ${removable('f')}
                 ORDER BY ${finishedAt('f')}
                 LIMIT $2)
          AND ${removable('m')}
       RETURNING ${DELETED_COLUMNS}`,
      [limits.olderThanSec, batch, limits.returnPathSec, new Date()],
    );
    const dedupeKeys = await deleteDedupeKeys(c, gone.rows);
    await deleteSearchEntries(c, gone.rows);
    return { messages: gone.rowCount ?? 0, dedupeKeys };
  };
  return db instanceof pg.Pool ? inTransaction(db, run) : run(db);
}
