// The policy_rule table: rules an operator adds at run time (`admp policy add`).
import type { PolicyRule } from '../core/policy.js';
import type { Queryable } from './pool.js';

export interface RuleRow {
  id: number;
  from_glob: string;
  to_glob: string;
  types: string[];
  subject: string | null;
  max_bytes: number | null;
  action: 'allow' | 'deny';
}

export async function listRules(db: Queryable): Promise<RuleRow[]> {
  return (
    await db.query<RuleRow>(
      'SELECT id, from_glob, to_glob, types, subject, max_bytes, action FROM policy_rule ORDER BY id',
    )
  ).rows;
}

export async function addRule(db: Queryable, r: Omit<PolicyRule, 'id'>): Promise<RuleRow> {
  const { rows } = await db.query<RuleRow>(
    `INSERT INTO policy_rule (from_glob, to_glob, types, subject, max_bytes, action) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING id, from_glob, to_glob, types, subject, max_bytes, action`,
    [r.from, r.to, r.types ?? [], r.subject ?? null, r.max_bytes ?? null, r.action],
  );
  return rows[0]!;
}

export async function removeRule(db: Queryable, id: number): Promise<boolean> {
  return ((await db.query('DELETE FROM policy_rule WHERE id = $1', [id])).rowCount ?? 0) > 0;
}
