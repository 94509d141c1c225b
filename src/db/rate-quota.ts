// Rate quota counters (migrations/0015_rate_quota.sql): the generic cell rate algorithm,
// one row per key. A key's theoretical arrival time (tat) moves `interval` ahead per
// admitted message; a message is admitted while tat - now stays within burst × interval.
// So `burst` pass at once after a quiet spell, then one per interval, and a refusal
// knows exactly when the next place frees up. Chosen over rate-limiter-flexible's
// PostgreSQL store (fixed windows, one statement per key and caller) because the count
// of a whole batch of keys and callers rides in the enqueue statement (enqueue_message,
// migrations/0018_enqueue_quota.sql; src/db/enqueue.ts), and rate and burst live in one row.
import type { Queryable } from './pool.js';

/**
 * Forgets keys whose tat has passed (they would start afresh anyway); returns how many.
 * A key an enqueue is counting right now is skipped, not waited for (it is swept next
 * time). A plain DELETE locked the rows in scan order while enqueue_message locks them in
 * key order: a sweep holding one key and waiting for another that a batch held, while the
 * batch waited for the first, was a deadlock, found only after deadlock_timeout (1 s), so
 * every send of that second waited and one of the two statements failed. Measured (bench
 * send-quota, one sender's key used by every batch): deadlocks every second, p99 2.9 s.
 */
export async function sweepQuotas(db: Queryable, nowUs: number): Promise<number> {
  const r = await db.query(
    `DELETE FROM rate_quota WHERE tat_us < $1
        AND key IN (SELECT key FROM rate_quota WHERE tat_us < $1 FOR UPDATE SKIP LOCKED)`,
    [nowUs],
  );
  return r.rowCount ?? 0;
}
