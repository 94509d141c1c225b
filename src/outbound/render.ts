// A queued message as the mail that leaves: the ADMP envelope (the same fields as an
// HTTP send), signed by the sending agent (docs/protocol.md §3, §5), and the SMTP
// envelope. The return path carries a bounce tag naming the message
// (src/core/bounce-tag.ts), so that a delivery report can be matched to it and to
// nothing else.
import { buildSignedMessage, type SigningKey } from '../mail/signed-message.js';
import type { Envelope } from '../core/envelope.js';
import type { OutboundRow } from '../mailbox/outbound-queue.js';

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
export async function renderOutbound(
  row: OutboundRow,
  key: SigningKey,
  nowSec: number,
  returnPath: string,
): Promise<OutboundMail> {
  const signed = await buildSignedMessage(outboundEnvelope(row, nowSec), key, {
    now: nowSec,
    messageId: `<${row.mail_message_id}>`,
  });
  return { from: returnPath, to: row.to_agent_id, raw: signed.eml };
}
