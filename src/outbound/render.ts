// A queued message as the mail that leaves: the ADMP envelope (the same fields as an
// HTTP send), signed by the sending agent (docs/protocol.md §3, §5), and the SMTP
// envelope. The return path is VERP-style, `admp-bounce+<message id>@<sender's
// agents domain>`, so a delivery report names the message it is about wherever it
// lands (BOUNCE_LOCAL in src/ingress/pipeline.ts reads it back).
import { parseAddress } from '../core/address.js';
import { buildSignedMessage, type SigningKey } from '../mail/signed-message.js';
import type { Envelope } from '../core/envelope.js';
import type { OutboundRow } from '../mailbox/outbound-queue.js';

export const bounceAddress = (messageId: string, sender: string): string =>
  `admp-bounce+${messageId}@${parseAddress(sender, 'from').domain}`;

/**
 * The envelope of a row at `nowSec`. ttl_sec is what is left, so the message expires at
 * the same time everywhere. Without a correlation id the message's own id is sent, as a
 * local reply would use it: the partner's reply then names the message it answers.
 */
export function outboundEnvelope(row: OutboundRow, nowSec: number): Envelope {
  return {
    to: row.to_agent_id,
    type: row.type,
    ...(row.subject !== null ? { subject: row.subject } : {}),
    body: row.body,
    correlation_id: row.correlation_id ?? row.id,
    ttl_sec: Math.max(1, Math.ceil(row.expires_at.getTime() / 1000 - nowSec)),
  };
}

export interface OutboundMail {
  readonly from: string;
  readonly to: string;
  readonly raw: Buffer;
}

/** Signs afresh on every attempt (the timestamp must be current), with the Message-ID fixed at the first claim. */
export async function renderOutbound(row: OutboundRow, key: SigningKey, nowSec: number): Promise<OutboundMail> {
  const signed = await buildSignedMessage(outboundEnvelope(row, nowSec), key, {
    now: nowSec,
    messageId: `<${row.mail_message_id}>`,
  });
  return { from: bounceAddress(row.id, row.from_agent), to: row.to_agent_id, raw: signed.eml };
}
