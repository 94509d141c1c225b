// How message rows appear in API responses (snake_case, addresses, ISO times).
import type { DeliveryLogEntry } from './schemas.js';
import type { LeaseOutcome, LeaseRef, MessageRow, PulledRow } from '../mailbox/mailbox.js';
import type { EndpointView } from '../mailbox/webhook-endpoints.js';

export function presentPulled(m: PulledRow, toAddress: string) {
  return {
    id: m.id,
    lease_id: m.lease_id!,
    lease_until: m.lease_until!.toISOString(),
    from: m.from_agent,
    to: toAddress,
    detail: m.detail ?? null,
    channel: m.channel,
    type: m.type,
    subject: m.subject,
    body: m.body,
    correlation_id: m.correlation_id,
    in_reply_to: m.in_reply_to,
    attempts: m.attempts,
    created_at: m.created_at.toISOString(),
    auth: m.auth ?? null,
  };
}

export function presentStatus(m: MessageRow, toAddress: string) {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: m.id,
    status: m.status,
    from: m.from_agent,
    to: toAddress,
    detail: typeof m.headers?.detail === 'string' ? m.headers.detail : null,
    channel: m.channel,
    type: m.type,
    subject: m.subject,
    correlation_id: m.correlation_id,
    in_reply_to: m.in_reply_to,
    reply: m.reply,
    attempts: m.attempts,
    created_at: iso(m.created_at),
    delivered_at: iso(m.delivered_at),
    acked_at: iso(m.acked_at),
    expires_at: iso(m.expires_at),
    lease_until: iso(m.lease_until),
    // Written only by our SQL (the LOG fragment): each entry has `at` and `event`.
    delivery_log: m.delivery_log as DeliveryLogEntry[],
  };
}

/** A batch of acks in request order: `acked`, or why a lease was refused. */
export function presentAcks(refs: readonly LeaseRef[], outcomes: ReadonlyMap<string, LeaseOutcome>) {
  return refs.map(({ id }) => {
    const o = outcomes.get(id)!;
    return { id, outcome: o === 'ok' ? ('acked' as const) : o };
  });
}

/** A webhook endpoint as its owner sees it (the secret only in the registration answer). */
export function presentEndpoint(e: EndpointView) {
  return {
    id: e.id,
    url: e.url,
    types: e.types,
    public_key: e.public_key,
    disabled_at: e.disabled_at?.toISOString() ?? null,
    disabled_reason: e.disabled_reason,
    created_at: e.created_at.toISOString(),
  };
}
