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

/** What a reservation got: how many units, and the key's tat after it (microseconds). */
export interface Reservation {
  readonly granted: number;
  readonly tatUs: number;
}

/**
 * Reserves up to `want` units of one key at once (src/mailbox/quota-leases.ts): the same
 * GCRA update as enqueue_message's count, granting as many as fit. One statement, its own
 * commit: a unit is counted here, before any message uses it.
 */
export async function reserveQuota(
  db: Queryable,
  key: string,
  intervalUs: number,
  burst: number,
  want: number,
  nowUs: number,
): Promise<Reservation> {
  const { rows } = await db.query<{ granted: number; tat_us: string | number }>({
    name: 'admp_reserve_quota',
    text: `INSERT INTO rate_quota AS q (key, tat_us, interval_us, burst, granted)
           VALUES ($1, $5::bigint + LEAST($4::integer, $3::integer) * $2::bigint, $2, $3, LEAST($4::integer, $3::integer))
           ON CONFLICT (key) DO UPDATE SET (granted, tat_us, interval_us, burst) = (
             SELECT g, base + g * EXCLUDED.interval_us, EXCLUDED.interval_us, EXCLUDED.burst
               FROM (SELECT GREATEST(q.tat_us, $5::bigint) AS base) AS t,
                    LATERAL (SELECT GREATEST(0, LEAST(EXCLUDED.granted,
                               ($5::bigint + EXCLUDED.burst * EXCLUDED.interval_us - base) / EXCLUDED.interval_us)) AS g) AS f)
           RETURNING q.granted, q.tat_us`,
    values: [key, intervalUs, burst, want, nowUs],
  });
  return { granted: rows[0]!.granted, tatUs: Number(rows[0]!.tat_us) };
}
