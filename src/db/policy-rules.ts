// The policy_rule table: rules an operator adds at run time (`admp policy add`).
import type { PolicyRule, QuotaPer } from '../core/policy.js';
import type { Queryable } from './pool.js';

export interface RuleRow {
  id: number;
  from_glob: string;
  to_glob: string;
  types: string[];
  subject: string | null;
  max_bytes: number | null;
  action: 'allow' | 'deny' | 'limit';
  /** The rate quota of a limit rule (migrations/0015_rate_quota.sql). */
  quota_per: QuotaPer | null;
  quota_limit: number | null;
  quota_window_sec: number | null;
  quota_burst: number | null;
}

const COLUMNS =
  'id, from_glob, to_glob, types, subject, max_bytes, action, quota_per, quota_limit, quota_window_sec, quota_burst';

export async function listRules(db: Queryable): Promise<RuleRow[]> {
  return (await db.query<RuleRow>(`SELECT ${COLUMNS} FROM policy_rule ORDER BY id`)).rows;
}

export async function addRule(db: Queryable, r: Omit<PolicyRule, 'id'>): Promise<RuleRow> {
  const { rows } = await db.query<RuleRow>(
    `INSERT INTO policy_rule (from_glob, to_glob, types, subject, max_bytes, action,
                              quota_per, quota_limit, quota_window_sec, quota_burst)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     RETURNING ${COLUMNS}`,
    [
      r.from,
      r.to,
      r.types ?? [],
      r.subject ?? null,
      r.max_bytes ?? null,
      r.action,
      r.quota?.per ?? null,
      r.quota?.limit ?? null,
      r.quota?.window_sec ?? null,
      r.quota?.burst ?? null,
    ],
  );
  return rows[0]!;
}

export async function removeRule(db: Queryable, id: number): Promise<boolean> {
  return ((await db.query('DELETE FROM policy_rule WHERE id = $1', [id])).rowCount ?? 0) > 0;
}
