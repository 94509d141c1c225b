// Delivery policy: may this sender give this message to this recipient? Pure.
// Rules come from the policy YAML file (docs/policy.md) and the policy_rule table;
// the first rule that matches decides. Without a matching rule, our own agents may
// message each other, and unknown external senders are refused (deny by default).

export type Action = 'allow' | 'deny';

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

const matches = (r: PolicyRule, d: Delivery): boolean =>
  glob(r.from).test(d.from) &&
  glob(r.to).test(d.to) &&
  (!r.types || r.types.length === 0 || r.types.some((t) => glob(t).test(d.type))) &&
  (r.subject === undefined || glob(r.subject).test(d.subject ?? ''));

const label = (r: PolicyRule, i: number): string => r.id ?? `rule ${i + 1} (${r.from} -> ${r.to})`;

export function decide(policy: Policy, ourDomains: readonly string[], d: Delivery): Decision {
  const i = policy.rules.findIndex((r) => matches(r, d));
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
  if (ourDomains.includes(senderDomain)) return { allow: true, rule: 'default: local sender' };
  return {
    allow: false,
    reason: 'unknown_sender',
    message: `no policy admits ${d.from} (unknown external senders are refused)`,
  };
}

/** May the MTA's SASL user `user` send as agent `agent`? */
export function saslMayActAs(policy: Policy, user: string, agent: string): boolean {
  return policy.sasl.some(
    (m) => m.user.toLowerCase() === user.toLowerCase() && m.agents.some((g) => glob(g).test(agent)),
  );
}

export const EMPTY_POLICY: Policy = Object.freeze({ rules: [], sasl: [], max_inbox: 0 });
