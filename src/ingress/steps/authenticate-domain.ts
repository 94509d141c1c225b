// Step 2: the sender's domain vouches for the mail — an aligned DKIM pass (from the
// road's trusted verdicts, or our own check), or a SASL login of our MTA that policy
// lets act as the sender.
import { AdmpError } from '../../errors.js';
import { saslMayActAs, type Policy } from '../../core/policy.js';
import type { AgentAddress } from '../../core/address.js';
import { headerFields } from '../authentication-results.js';
import { alignedDkimPass, isAligned, verifyDkim, type DomainAuth, type Resolver } from '../domain-auth.js';
import type { MailDelivery } from '../delivery.js';

export interface DomainAuthenticated {
  readonly auth: DomainAuth;
  /** How: `dkim:<domain>` or `sasl:<login>`. */
  readonly method: string;
}

export async function authenticateDomain(
  d: MailDelivery,
  sender: AgentAddress,
  policy: Policy,
  o: { readonly verifyAlways: boolean; readonly dkimKeys: Resolver },
): Promise<DomainAuthenticated | AdmpError> {
  if (d.saslUser && saslMayActAs(policy, d.saslUser, sender.address))
    return { auth: d.trusted, method: `sasl:${d.saslUser}` };
  // Trusting the MTA needs a verdict to trust: when an earlier `accept` made Rspamd
  // skip its DKIM check (passthrough), a signed message arrives without one, and
  // is verified here instead (through the configured resolver).
  const verify =
    o.verifyAlways ||
    (d.trusted.dkim.length === 0 && headerFields(d.raw).some((h) => h.name.toLowerCase() === 'dkim-signature'));
  const auth = verify ? await verifyDkim(d.raw, o.dkimKeys) : d.trusted;
  const domain = alignedDkimPass(auth, sender.domain);
  if (domain) return { auth, method: `dkim:${domain}` };
  if (auth.dkim.some((v) => v.result === 'temperror' && isAligned(v.domain, sender.domain))) {
    return new AdmpError('key_unavailable', `DKIM key of ${sender.domain} could not be fetched; try again later`);
  }
  const seen = auth.dkim.map((v) => `${v.domain}=${v.result}`).join(', ') || 'no DKIM signature';
  return new AdmpError('domain_auth_failed', `no DKIM pass aligned with ${sender.domain} (${seen})`);
}
