// Step 5b, after the policy: the rate quotas of its `limit` rules (docs/policy.md). A mail over a
// quota is refused for now (451 4.7.1, a soft reject on the Rspamd road): the sender's
// MTA keeps it and retries, so a legitimate burst is delivered later rather than lost.
// Counted after the signature and the policy admitted the mail, so forged or refused mail
// never spends a sender's quota.
import type { AdmpError } from '../../errors.js';
import type { QuotaGate, QuotaSubject } from '../../policy/rate-quotas.js';
import { withSpan } from '../../tracing.js';

export function checkRate(mail: QuotaSubject, quotas: QuotaGate): Promise<AdmpError | undefined> {
  return withSpan('admp.ingest.rate_quota', { 'admp.recipient': mail.to }, () => quotas.admit(mail, 'mail'));
}
