// The source fingerprint of an HTTP send: SHA-256 over a canonical form of the message
// and its Idempotency-Key, so a resend of the same key with other content is told apart
// (enqueue_message's `conflict`) and two distinct messages never collapse into one.
// Signed mail is keyed by its signing agent and Message-ID instead (src/core/replay.ts).
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

/**
 * `canonicalBody` is `canonicalJson(m.body)` when the caller has made it already (the
 * mailbox measures the body's size on it): the body, the bulk of the work, is then
 * serialised once per send.
 */
export function fingerprint(m: FingerprintInput, canonicalBody = canonicalJson(m.body)): string {
  const head = canonicalJson([
    'admp-fp-v1',
    m.from.toLowerCase(),
    m.to.toLowerCase(),
    m.type,
    m.subject ?? null,
    m.correlation_id ?? null,
    m.unique_id,
  ]);
  // The canonical array with the body as its last member: `[head…,body]`.
  return createHash('sha256')
    .update(`${head.slice(0, -1)},${canonicalBody}]`)
    .digest('hex');
}
