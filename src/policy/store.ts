// Where the policy comes from: the YAML file named by ADMP_POLICY_FILE (read and
// validated once at start; a bad file stops the start with the offending key) and
// the policy_rule table (re-read every few seconds, so `admp policy add` applies
// without a restart). File rules come first.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import type pg from 'pg';
import { listRules, type RuleRow } from '../db/policy-rules.js';
import { ConfigError } from '../errors.js';
import { EMPTY_POLICY, RateQuotaSchema, ruleProblem, type Policy, type PolicyRule } from '../core/policy.js';

const Rule = Type.Object(
  {
    id: Type.Optional(Type.String()),
    from: Type.String({ minLength: 1 }),
    to: Type.String({ minLength: 1 }),
    types: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    subject: Type.Optional(Type.String()),
    max_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    action: Type.Union([Type.Literal('allow'), Type.Literal('deny'), Type.Literal('limit')]),
    quota: Type.Optional(RateQuotaSchema),
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
  for (const [i, r] of (p.rules ?? []).entries()) {
    const problem = ruleProblem(r);
    if (problem) throw new ConfigError('ADMP_POLICY_FILE', `${path}/rules/${i}: ${problem}`);
  }
  return Object.freeze({ rules: p.rules ?? [], sasl: p.sasl ?? [], max_inbox: p.max_inbox ?? 0 });
}

export const ruleFromRow = (r: RuleRow): PolicyRule => ({
  id: `db:${r.id}`,
  from: r.from_glob,
  to: r.to_glob,
  types: r.types,
  action: r.action,
  ...(r.subject !== null ? { subject: r.subject } : {}),
  ...(r.max_bytes !== null ? { max_bytes: r.max_bytes } : {}),
  ...(r.quota_per !== null && r.quota_limit !== null && r.quota_window_sec !== null
    ? {
        quota: {
          per: r.quota_per,
          limit: r.quota_limit,
          window_sec: r.quota_window_sec,
          ...(r.quota_burst !== null ? { burst: r.quota_burst } : {}),
        },
      }
    : {}),
});

const REFRESH_MS = 5000;

export interface PolicySource {
  current(): Promise<Policy>;
  /** Reads the table now (an operator's dry-run must see the rule just added). */
  fresh(): Promise<Policy>;
}

export function createPolicySource(pool: Pick<pg.Pool, 'query'>, file: Policy): PolicySource {
  let cached: { policy: Policy; at: number } | undefined;
  let reading: Promise<Policy> | undefined;
  async function fresh(): Promise<Policy> {
    const rows = await listRules(pool);
    const policy: Policy = { ...file, rules: [...file.rules, ...rows.map(ruleFromRow)] };
    cached = { policy, at: Date.now() };
    return policy;
  }
  return {
    current() {
      if (cached && Date.now() - cached.at < REFRESH_MS) return Promise.resolve(cached.policy);
      // Every request that finds the copy old waits for one read: under load, each
      // refresh was otherwise as many reads as requests in flight, taking the pool's
      // connections from the enqueue batch that they all then waited for.
      reading ??= fresh().finally(() => (reading = undefined));
      return reading;
    },
    fresh,
  };
}
