// Single-use keys (an HMAC request's nonce), remembered until a replay could no longer be
// accepted anyway. One table for every instance, so a replay to another worker is caught.
import type { Queryable } from './pool.js';

/**
 * Records `key` in `scope` until `expiresAt`. True for the first use; false when the key
 * is already recorded and unexpired (a replay). An expired row not yet swept is reused.
 */
export async function useOnce(db: Queryable, scope: string, key: string, expiresAt: Date): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO replay_guard (scope, key, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (scope, key) DO UPDATE SET expires_at = EXCLUDED.expires_at
      WHERE replay_guard.expires_at < $4
     RETURNING 1`,
    // The time comes in as a value, on the same clock as expiresAt: Citus (where this is a
    // reference table) refuses now() in an ON CONFLICT … WHERE.
    [scope, key, expiresAt, new Date()],
  );
  return r.rowCount === 1;
}

/** Deletes expired keys; returns how many. */
export async function sweepReplayGuard(db: Queryable): Promise<number> {
  const r = await db.query('DELETE FROM replay_guard WHERE expires_at < now()');
  return r.rowCount ?? 0;
}
