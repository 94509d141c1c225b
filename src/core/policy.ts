// Delivery policy: may this sender give this message to this recipient? Pure.
// Rules come from the policy YAML file (docs/policy.md) and the policy_rule table;
// the first rule that matches decides. Without a matching rule, our own agents may
// message each other, and unknown external senders are refused (deny by default).
// `limit` rules never decide: every one that matches counts the message against its
// rate quota (core/rate-quota.ts), on every road, HTTP sends included.
import { Type, type Static } from '@sinclair/typebox';
import { acrossTenants, isOurDomain } from './domains.js';

export type Action = 'allow' | 'deny' | 'limit';

/**
 * A rate quota: `limit` messages per `window_sec` on average, at most `burst` at once
 * (absent: `limit`), counted separately per value of `per` (the policy file, the admin
 * API and the CLI all take this shape).
 */
export const RateQuotaSchema = Type.Object(
  {
    per: Type.Union([
      Type.Literal('sender'),
      Type.Literal('sender_domain'),
      Type.Literal('recipient'),
      Type.Literal('pair'),
      Type.Literal('correlation'),
    ]),
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    window_sec: Type.Integer({ minimum: 1, maximum: 86_400 }),
    burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
export type RateQuota = Static<typeof RateQuotaSchema>;
export type QuotaPer = RateQuota['per'];

export interface PolicyRule {
  readonly id?: string;
  /** Glob over the sender agent address, e.g. `*@agents.partner.example`. */
  readonly from: string;
  /** Glob over the recipient agent address. */
  readonly to: string;
  /** Globs over the ADMP type; empty or absent: any type. */
  readonly types?: readonly string[];
  /** Glob over the subject; absent: any subject. */
  readonly subject?: string;
  /** Largest message (raw mail or JSON body) this rule admits, in bytes. */
  readonly max_bytes?: number;
  readonly action: Action;
  /** The rate quota of a `limit` rule (required there, absent elsewhere). */
  readonly quota?: RateQuota;
}

/** A SASL login of the MTA (a Mailcow mailbox) allowed to send as these agents. */
export interface SaslMapping {
  readonly user: string;
  /** Globs over agent addresses the user may send as. */
  readonly agents: readonly string[];
}

export interface Policy {
  readonly rules: readonly PolicyRule[];
  readonly sasl: readonly SaslMapping[];
  /** Largest inbox (delivered + leased) before senders are told to retry later; 0: unlimited. */
  readonly max_inbox: number;
}

export interface Delivery {
  readonly from: string;
  readonly to: string;
  readonly type: string;
  readonly subject?: string | null;
  readonly bytes: number;
}

export type Decision =
  | { readonly allow: true; readonly rule: string }
  | {
      readonly allow: false;
      readonly reason: 'denied_by_rule' | 'too_large' | 'unknown_sender';
      readonly message: string;
    };

const globCache = new Map<string, RegExp>();

/** `*` any run of characters, `?` one character; case-insensitive; everything else literal. */
export function glob(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (!re) {
    const body = pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    re = new RegExp(`^${body}$`, 'i');
    globCache.set(pattern, re);
  }
  return re;
}

export const matches = (r: PolicyRule, d: Omit<Delivery, 'bytes'>): boolean =>
  glob(r.from).test(d.from) &&
  glob(r.to).test(d.to) &&
  (!r.types || r.types.length === 0 || r.types.some((t) => glob(t).test(d.type))) &&
  (r.subject === undefined || glob(r.subject).test(d.subject ?? ''));

export const label = (r: PolicyRule, i: number): string => r.id ?? `rule ${i + 1} (${r.from} -> ${r.to})`;

export function decide(policy: Policy, ourDomains: readonly string[], d: Delivery): Decision {
  const i = policy.rules.findIndex((r) => r.action !== 'limit' && matches(r, d));
  const rule = policy.rules[i];
  if (rule) {
    if (rule.action === 'deny')
      return {
        allow: false,
        reason: 'denied_by_rule',
        message: `policy ${label(rule, i)} refuses ${d.from} -> ${d.to}`,
      };
    if (rule.max_bytes !== undefined && d.bytes > rule.max_bytes) {
      return {
        allow: false,
        reason: 'too_large',
        message: `policy ${label(rule, i)} admits at most ${rule.max_bytes} bytes`,
      };
    }
    return { allow: true, rule: label(rule, i) };
  }
  const senderDomain = d.from.slice(d.from.lastIndexOf('@') + 1).toLowerCase();
  const recipientDomain = d.to.slice(d.to.lastIndexOf('@') + 1).toLowerCase();
  if (isOurDomain(ourDomains, senderDomain) && !acrossTenants(ourDomains, senderDomain, recipientDomain))
    return { allow: true, rule: 'default: local sender' };
  return {
    allow: false,
    reason: 'unknown_sender',
    message: `no policy admits ${d.from} (unknown external senders are refused)`,
  };
}

/** Why a rule cannot be used (a `limit` rule without its quota, a quota elsewhere); undefined when it can. */
export function ruleProblem(r: PolicyRule): string | undefined {
  if (r.action === 'limit' && !r.quota) return 'a limit rule needs its quota (per, limit, window_sec)';
  if (r.action !== 'limit' && r.quota) return `a quota belongs on a limit rule, not on ${r.action}`;
  return undefined;
}

/** May the MTA's SASL user `user` send as agent `agent`? */
export function saslMayActAs(policy: Policy, user: string, agent: string): boolean {
  return policy.sasl.some(
    (m) => m.user.toLowerCase() === user.toLowerCase() && m.agents.some((g) => glob(g).test(agent)),
  );
}

export const EMPTY_POLICY: Policy = Object.freeze({ rules: [], sasl: [], max_inbox: 0 });
