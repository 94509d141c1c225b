// Step 6: the row to store — only fields the signature vouches for, in the canonical
// form it signed them (the subject whitespace-collapsed), the verdicts that admitted it,
// and the replay key (agent + Message-ID) that makes any other copy of it a duplicate.
import type { Envelope } from '../../core/envelope.js';
import { replayKey } from '../../core/replay.js';
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
  o: { readonly defaultTtlSec: number; readonly replayUntil: number },
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
    ttl_sec: envelope.ttl_sec ?? o.defaultTtlSec,
    mail_message_id: messageId,
    source_fingerprint: replayKey(v.signature.agent, messageId),
    replay_until: o.replayUntil,
    headers: {
      message_id: messageId,
      road: d.road,
      ...(d.queueId ? { queue_id: d.queueId } : {}),
      ...(v.admitted.to.detail ? { detail: v.admitted.to.detail } : {}),
      ...(v.admitted.to.token ? { token: v.admitted.to.token } : {}),
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
