// Step 5: the recipient is one of our agents, policy admits this sender, type,
// subject and size to it, and its inbox has room.
import { AdmpError } from '../../errors.js';
import { decide, type Policy } from '../../core/policy.js';
import type { Directory, Recipient } from '../../mailbox/directory.js';
import type { Metrics } from '../../metrics.js';
import { withSpan } from '../../tracing.js';

export interface Admitted {
  readonly to: Extract<Recipient, { kind: 'local' }>;
  /** The id of the rule that admitted the mail. */
  readonly rule: string;
}

export interface PolicyCheck {
  readonly policy: Policy;
  readonly domains: readonly string[];
  readonly directory: Directory;
  readonly metrics?: Metrics;
}

export function checkPolicy(
  mail: { from: string; recipient: string; type: string; subject: string | null; bytes: number },
  o: PolicyCheck,
): Promise<Admitted | AdmpError> {
  const denied = (reason: string, error: AdmpError): AdmpError => {
    o.metrics?.policyDenied.inc({ reason });
    return error;
  };
  return withSpan('admp.ingest.policy', { 'admp.recipient': mail.recipient }, async () => {
    const to = await o.directory.resolve(mail.recipient, 'recipient');
    if (to.kind !== 'local')
      return denied('not_local', new AdmpError('policy_denied', `${mail.recipient} is not in our agents domains`));
    const decision = decide(o.policy, o.domains, {
      from: mail.from,
      to: to.address,
      type: mail.type,
      subject: mail.subject,
      bytes: mail.bytes,
    });
    if (!decision.allow)
      return denied(
        decision.reason,
        new AdmpError(decision.reason === 'too_large' ? 'payload_too_large' : 'policy_denied', decision.message),
      );
    if (o.policy.max_inbox > 0 && (await o.directory.inboxHolds(to.agentId, o.policy.max_inbox)))
      return denied(
        'quota_exceeded',
        new AdmpError('quota_exceeded', `inbox of ${to.address} is full; try again later`),
      );
    return { to, rule: decision.rule };
  });
}
