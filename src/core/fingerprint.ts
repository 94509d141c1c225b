// The source fingerprint: SHA-256 over a canonical form of a message, used to
// dedupe the same message arriving twice (a retried SMTP delivery, the Rspamd and
// LMTP roads both carrying it, an idempotent HTTP replay). It covers the sender's
// unique id for the message (the signed nonce for mail, the Idempotency-Key for
// HTTP), so two distinct messages with equal content never collapse into one.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

export interface FingerprintInput {
  from: string;
  to: string;
  type: string;
  subject?: string | null;
  correlation_id?: string | null;
  body: unknown;
  /** The sender's unique id for this message. */
  unique_id: string;
}

export function fingerprint(m: FingerprintInput): string {
  const canonical = canonicalJson([
    'admp-fp-v1',
    m.from.toLowerCase(),
    m.to.toLowerCase(),
    m.type,
    m.subject ?? null,
    m.correlation_id ?? null,
    m.unique_id,
    m.body,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
