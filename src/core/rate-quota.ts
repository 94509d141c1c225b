// Which rate quotas a message is counted against: every `limit` rule of the policy
// that matches it, each keyed by what the rule counts separately (docs/policy.md).
// Pure; the counting itself happens in the statement that stores the message
// (enqueue_message, migrations/0018_enqueue_quota.sql).
import { label, matches, type Policy, type PolicyRule, type QuotaPer, type RateQuota } from './policy.js';

/** A message as the quotas see it: its sender, recipient (both agent addresses), type, subject, thread. */
export interface QuotaSubject {
  readonly from: string;
  readonly to: string;
  readonly type: string;
  readonly subject?: string | null;
  readonly correlation_id?: string | null;
}

/** One count to make: a key of one rule, with the rule's rate. */
export interface QuotaCharge {
  /** The rule's id (or its position), as logs and metrics name it. */
  readonly rule: string;
  /** What is counted, e.g. `sender_domain=agents.partner.example`. */
  readonly key: string;
  /** The counter's key in the database: the rule and what it counts. */
  readonly counter: string;
  /** The rule's window, e.g. `60s`. */
  readonly window: string;
  /** The quota, to say it in a refusal. */
  readonly quota: RateQuota;
  /**
   * The generic cell rate algorithm's terms: one message earns its place every
   * `intervalUs` microseconds (window / limit), and `burst` may come at once.
   */
  readonly intervalUs: number;
  readonly burst: number;
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/**
 * The value a rule counts by, or undefined when the message has none (a loop guard
 * counts only messages in a thread). A correlation id is chosen by the sender, so it
 * is counted per sender: another sender cannot spend a thread's quota for it.
 */
function keyValue(per: QuotaPer, s: QuotaSubject): string | undefined {
  const from = s.from.toLowerCase();
  const to = s.to.toLowerCase();
  switch (per) {
    case 'sender':
      return from;
    case 'sender_domain':
      return domainOf(from);
    case 'recipient':
      return to;
    case 'pair':
      return `${from}>${to}`;
    case 'correlation':
      return s.correlation_id ? `${from}>${s.correlation_id}` : undefined;
  }
}

/** A `limit` rule with what every charge of it shares, made once per policy copy. */
interface LimitRule {
  readonly rule: PolicyRule;
  readonly label: string;
  readonly per: QuotaPer;
  /** `per=`, what the key starts with, and `label|per=`, what the counter starts with. */
  readonly keyPrefix: string;
  readonly counterPrefix: string;
  readonly window: string;
  readonly quota: RateQuota;
  readonly intervalUs: number;
  readonly burst: number;
}

/** A policy copy's limit rules; a new copy (re-read, or changed) gets its own. */
const limitRules = new WeakMap<Policy, readonly LimitRule[]>();

function limitRulesOf(policy: Policy): readonly LimitRule[] {
  let rules = limitRules.get(policy);
  if (!rules) {
    rules = policy.rules.flatMap((r, i): LimitRule[] => {
      if (r.action !== 'limit' || !r.quota) return [];
      const label_ = label(r, i);
      return [
        {
          rule: r,
          label: label_,
          per: r.quota.per,
          keyPrefix: `${r.quota.per}=`,
          counterPrefix: `${label_}|${r.quota.per}=`,
          window: `${r.quota.window_sec}s`,
          quota: r.quota,
          intervalUs: Math.max(1, Math.round((r.quota.window_sec * 1e6) / r.quota.limit)),
          burst: r.quota.burst ?? r.quota.limit,
        },
      ];
    });
    limitRules.set(policy, rules);
  }
  return rules;
}

export function quotaCharges(policy: Policy, s: QuotaSubject): QuotaCharge[] {
  const charges: QuotaCharge[] = [];
  for (const l of limitRulesOf(policy)) {
    if (!matches(l.rule, s)) continue;
    const value = keyValue(l.per, s);
    if (value === undefined) continue;
    charges.push({
      rule: l.label,
      key: l.keyPrefix + value,
      counter: l.counterPrefix + value,
      window: l.window,
      quota: l.quota,
      intervalUs: l.intervalUs,
      burst: l.burst,
    });
  }
  return charges;
}
