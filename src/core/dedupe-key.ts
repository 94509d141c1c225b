// The dedupe key enqueue_message claims for a message (migrations/0001_core.sql): kind
// byte 1 and SHA-256 of "<sender>\n<idempotency key>" when the sender gave a key, else
// kind byte 2 and the source fingerprint; none without either. Computed here where a
// statement cannot compute it: Citus refuses convert_to (not immutable) over columns in
// a distributed DELETE.
import { createHash } from 'node:crypto';

export function dedupeKey(m: {
  from_agent: string;
  idempotency_key: string | null;
  source_fingerprint: Uint8Array | null;
}): Buffer | null {
  if (m.idempotency_key !== null)
    return Buffer.concat([
      Buffer.from([1]),
      createHash('sha256').update(`${m.from_agent}\n${m.idempotency_key}`, 'utf8').digest(),
    ]);
  if (m.source_fingerprint !== null) return Buffer.concat([Buffer.from([2]), m.source_fingerprint]);
  return null;
}
