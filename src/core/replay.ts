// The replay rule for signed mail (docs/protocol.md §6.4). A signature binds the sending
// agent to a Message-ID, the sender's nonce for that message; within one inbox that pair
// names one message for as long as any copy of the signature could still be accepted.
// Every road stores mail through enqueue_message, which claims this key in the inbox's
// message_dedupe: a second copy (another road, a retry, a copy re-folded or re-encoded on
// the way, even the sender signing other content under the same Message-ID) answers with
// the first row, and retention keeps that row and its key until the signature's validUntil
// (src/core/signature.ts): the last moment a copy could still be accepted as fresh.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { canonicalMessageId } from './signature-base.js';

/** SHA-256 hex of the signing agent and the Message-ID: the dedupe key of a signed mail in its recipient's inbox. */
export function replayKey(agent: string, messageId: string): string {
  const canonical = canonicalJson(['admp-replay-v1', agent.trim().toLowerCase(), canonicalMessageId(messageId)]);
  return createHash('sha256').update(canonical).digest('hex');
}
