// Rate quota counters (migrations/0015_rate_quota.sql): the generic cell rate algorithm,
// one row per key. A key's theoretical arrival time (tat) moves `interval` ahead per
// admitted message; a message is admitted while tat - now stays within burst × interval.
// So `burst` pass at once after a quiet spell, then one per interval, and a refusal
// knows exactly when the next place frees up. Chosen over rate-limiter-flexible's
// PostgreSQL store (fixed windows, one statement per key and caller) because one
// statement here counts a whole batch of keys and callers, and rate and burst live in
// one row.
import type { Queryable } from './pool.js';

export interface QuotaCount {
  readonly key: string;
  /** Messages to admit now (callers gathered on this key). */
  readonly n: number;
  readonly intervalUs: number;
  readonly burst: number;
}

export interface QuotaCounted {
  /** How many of the `n` were admitted (the first ones). */
  readonly granted: number;
  /** The key's tat after this count, in microseconds since the epoch. */
  readonly tatUs: number;
}

/**
 * Counts every key in one statement. Keys must be distinct (PostgreSQL refuses to
 * update one row twice in a statement); rows are taken in key order, so concurrent
 * statements of several instances lock them in the same order and never deadlock.
 * `nowUs` comes in as a value: every instance counts on its own clock (kept by NTP,
 * as signatures' freshness already requires).
 */
export async function countQuotas(
  db: Queryable,
  counts: readonly QuotaCount[],
  nowUs: number,
): Promise<Map<string, QuotaCounted>> {
  const { rows } = await db.query<{ key: string; granted: number; tat_us: number | string }>(
    `INSERT INTO rate_quota AS q (key, tat_us, interval_us, burst, granted)
     SELECT k, $5::bigint + LEAST(n, b) * iv, iv, b, LEAST(n, b)
       FROM unnest($1::text[], $2::int[], $3::bigint[], $4::int[]) AS u(k, n, iv, b)
      ORDER BY k
     ON CONFLICT (key) DO UPDATE SET (granted, tat_us, interval_us, burst) = (
       -- As many as fit: the k-th is admitted while base + k × interval - now <= burst × interval.
       -- EXCLUDED.granted holds min(n, burst), never less than what can fit.
       SELECT g, base + g * EXCLUDED.interval_us, EXCLUDED.interval_us, EXCLUDED.burst
         FROM (SELECT GREATEST(q.tat_us, $5::bigint) AS base) AS t,
              LATERAL (SELECT GREATEST(0, LEAST(EXCLUDED.granted,
                         ($5::bigint + EXCLUDED.burst * EXCLUDED.interval_us - base) / EXCLUDED.interval_us)) AS g) AS f)
     RETURNING key, granted, tat_us`,
    [
      counts.map((c) => c.key),
      counts.map((c) => c.n),
      counts.map((c) => c.intervalUs),
      counts.map((c) => c.burst),
      nowUs,
    ],
  );
  // bigint: a string unless src/db/pool.ts's parser is loaded; microseconds stay far below 2^53.
  return new Map(rows.map((r) => [r.key, { granted: r.granted, tatUs: Number(r.tat_us) }]));
}

/** Forgets keys whose tat has passed (they would start afresh anyway); returns how many. */
export async function sweepQuotas(db: Queryable, nowUs: number): Promise<number> {
  const r = await db.query('DELETE FROM rate_quota WHERE tat_us < $1', [nowUs]);
  return r.rowCount ?? 0;
}
