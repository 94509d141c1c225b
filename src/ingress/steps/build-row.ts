// Step 6: the row to store — only fields the signature vouches for, the verdicts
// that admitted it, and the fingerprint that makes a redelivered copy a duplicate.
import type { Envelope } from '../../core/envelope.js';
import { fingerprint } from '../../core/fingerprint.js';
import type { NewMessage } from '../../mailbox/batcher.js';
import type { MailDelivery } from '../delivery.js';
import type { DomainAuthenticated } from './authenticate-domain.js';
import type { Admitted } from './check-policy.js';
import type { VerifiedSignature } from './verify-signature.js';

export interface Verdicts {
  readonly sender: string;
  readonly domain: DomainAuthenticated;
  readonly signature: VerifiedSignature;
  readonly admitted: Admitted;
}

export function buildRow(
  d: MailDelivery,
  envelope: Envelope,
  subject: string | null,
  messageId: string,
  v: Verdicts,
  defaultTtlSec: number,
): NewMessage {
  const { auth, method } = v.domain;
  return {
    to_agent_id: v.admitted.to.agentId,
    channel: 'smtp',
    status: 'delivered',
    from_agent: v.sender,
    subject,
    type: envelope.type,
    body: envelope.body,
    correlation_id: envelope.correlation_id ?? null,
    ttl_sec: envelope.ttl_sec ?? defaultTtlSec,
    mail_message_id: messageId,
    source_fingerprint: fingerprint({
      from: v.sender,
      to: v.admitted.to.address,
      type: envelope.type,
      subject,
      correlation_id: envelope.correlation_id,
      body: envelope.body,
      unique_id: `mid:${messageId}`,
    }),
    headers: {
      message_id: messageId,
      road: d.road,
      ...(d.queueId ? { queue_id: d.queueId } : {}),
      ...(v.admitted.to.detail ? { detail: v.admitted.to.detail } : {}),
    },
    auth: {
      domain: { method, source: auth.source, dkim: auth.dkim, spf: auth.spf, dmarc: auth.dmarc, arc: auth.arc },
      signature: {
        agent: v.signature.agent,
        kid: v.signature.kid,
        key_source: v.signature.keySource,
        timestamp: v.signature.timestamp,
      },
      policy: v.admitted.rule,
      client_ip: d.clientIp ?? null,
    },
  };
}
