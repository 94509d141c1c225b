// Where the policy comes from: the YAML file named by ADMP_POLICY_FILE (read and
// validated once at start; a bad file stops the start with the offending key) and
// the policy_rule table (re-read every few seconds, so `admp policy add` applies
// without a restart). File rules come first.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import type pg from 'pg';
import { ConfigError } from '../errors.js';
import { EMPTY_POLICY, type Policy, type PolicyRule } from '../core/policy.js';

const Rule = Type.Object(
  {
    id: Type.Optional(Type.String()),
    from: Type.String({ minLength: 1 }),
    to: Type.String({ minLength: 1 }),
    types: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    subject: Type.Optional(Type.String()),
    max_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    action: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  },
  { additionalProperties: false },
);

export const PolicyFile = Type.Object(
  {
    rules: Type.Optional(Type.Array(Rule)),
    sasl: Type.Optional(
      Type.Array(
        Type.Object(
          { user: Type.String({ minLength: 1 }), agents: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }) },
          { additionalProperties: false },
        ),
      ),
    ),
    max_inbox: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export function readPolicyFile(path: string): Policy {
  if (!path) return EMPTY_POLICY;
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new ConfigError('ADMP_POLICY_FILE', `cannot read ${path}: ${(err as Error).message}`);
  }
  const first = Value.Errors(PolicyFile, doc).First();
  if (first) throw new ConfigError('ADMP_POLICY_FILE', `${path}${first.path || '/'}: ${first.message}`);
  const p = doc as Static<typeof PolicyFile>;
  return Object.freeze({ rules: p.rules ?? [], sasl: p.sasl ?? [], max_inbox: p.max_inbox ?? 0 });
}

interface RuleRow {
  id: number;
  from_glob: string;
  to_glob: string;
  types: string[];
  subject: string | null;
  max_bytes: number | null;
  action: 'allow' | 'deny';
}

export const ruleFromRow = (r: RuleRow): PolicyRule => ({
  id: `db:${r.id}`,
  from: r.from_glob,
  to: r.to_glob,
  types: r.types,
  action: r.action,
  ...(r.subject !== null ? { subject: r.subject } : {}),
  ...(r.max_bytes !== null ? { max_bytes: r.max_bytes } : {}),
});

export async function listRules(db: Pick<pg.Pool, 'query'>): Promise<RuleRow[]> {
  return (
    await db.query<RuleRow>(
      'SELECT id, from_glob, to_glob, types, subject, max_bytes, action FROM policy_rule ORDER BY id',
    )
  ).rows;
}

export async function addRule(db: Pick<pg.Pool, 'query'>, r: Omit<PolicyRule, 'id'>): Promise<RuleRow> {
  const { rows } = await db.query<RuleRow>(
    `INSERT INTO policy_rule (from_glob, to_glob, types, subject, max_bytes, action) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING id, from_glob, to_glob, types, subject, max_bytes, action`,
    [r.from, r.to, r.types ?? [], r.subject ?? null, r.max_bytes ?? null, r.action],
  );
  return rows[0]!;
}

export async function removeRule(db: Pick<pg.Pool, 'query'>, id: number): Promise<boolean> {
  return ((await db.query('DELETE FROM policy_rule WHERE id = $1', [id])).rowCount ?? 0) > 0;
}

const REFRESH_MS = 5000;

export interface PolicySource {
  current(): Promise<Policy>;
}

export function createPolicySource(pool: pg.Pool, file: Policy): PolicySource {
  let cached: { policy: Policy; at: number } | undefined;
  return {
    async current() {
      if (cached && Date.now() - cached.at < REFRESH_MS) return cached.policy;
      const rows = await listRules(pool);
      const policy: Policy = { ...file, rules: [...file.rules, ...rows.map(ruleFromRow)] };
      cached = { policy, at: Date.now() };
      return policy;
    },
  };
}
