// The log of refused ingress mail (ingress_refusal): what the console shows as
// "recent refusals". Written after the refusal is decided and never on the answer's
// path; pruned so that a flood of refused mail cannot grow it without bound.
import type { Queryable } from './pool.js';

export interface RefusalRow {
  at: Date;
  road: string;
  sender: string | null;
  recipient: string | null;
  code: string;
  reason: string;
}

export async function recordRefusals(db: Queryable, rows: readonly Omit<RefusalRow, 'at'>[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO ingress_refusal (road, sender, recipient, code, reason)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])`,
    [
      rows.map((r) => r.road),
      rows.map((r) => r.sender),
      rows.map((r) => r.recipient),
      rows.map((r) => r.code),
      rows.map((r) => r.reason.slice(0, 500)),
    ],
  );
}

export async function recentRefusals(db: Queryable, limit: number): Promise<RefusalRow[]> {
  return (
    await db.query<RefusalRow>(
      'SELECT at, road, sender, recipient, code, reason FROM ingress_refusal ORDER BY at DESC LIMIT $1',
      [limit],
    )
  ).rows;
}

/** Keeps the newest `keep` rows (by id, the insertion order) of the last `days` days. */
export async function pruneRefusals(db: Queryable, keep: number, days: number): Promise<number> {
  const res = await db.query(
    `DELETE FROM ingress_refusal
      WHERE at < now() - make_interval(days => $2)
         OR id <= (SELECT id FROM ingress_refusal ORDER BY id DESC OFFSET $1 LIMIT 1)`,
    [keep, days],
  );
  return res.rowCount ?? 0;
}
