// The bounds of what an agent may ask of its mailbox. The Mailbox service checks them for
// every interface (HTTP, MCP, and any adapter to come), so none can pass a delay of years
// or a pull of a million rows through to the database; the HTTP schemas and the MCP tools
// declare the same numbers from here, so a client learns them up front.
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AdmpError } from '../errors.js';
import { Envelope } from '../core/envelope.js';

export const MAILBOX_LIMITS = {
  /** Longest delay before a released message is visible again (12 h, as SQS). */
  releaseDelaySec: 43_200,
  /** Longest lease or extension that may be asked for; ADMP_MAX_VISIBILITY_SEC may grant less. */
  leaseSec: 43_200,
  /** Most messages one pull takes. */
  pullMax: 100,
  /** Longest a pull waits for mail (long poll). */
  waitSec: 20,
  /** Most leases one ack (or one pull's acks) settles. */
  ackBatch: 100,
  /** Most dead letters one listing returns. */
  deadLetters: 100,
  /** Most dead letters redriven by id in one request. */
  redriveIds: 1000,
  /** Longest idempotency key. */
  idempotencyKeyChars: 255,
} as const;

const outgoing = TypeCompiler.Compile(Type.Omit(Envelope, ['to']));

/**
 * A message an agent sends or replies, checked against the envelope schema
 * (src/core/envelope.ts) as mail is on every road: a TTL of 0 or of centuries, a type
 * or subject out of form is `invalid_envelope` naming the field, whichever adapter passed it.
 */
export function checkOutgoing(msg: Omit<Envelope, 'to'> & { idempotency_key?: string | undefined }): void {
  // The fields by name: an adapter's own extras (a reply's lease_id) are not the envelope's.
  const fields = {
    type: msg.type,
    subject: msg.subject,
    body: msg.body,
    correlation_id: msg.correlation_id,
    ttl_sec: msg.ttl_sec,
  };
  if (!outgoing.Check(fields)) {
    const e = outgoing.Errors(fields).First();
    const field = e?.path.replace(/^\//, '').replace(/\//g, '.') || 'message';
    throw new AdmpError('invalid_envelope', `${field}: ${e?.message ?? 'invalid'}`, { field });
  }
  const key = msg.idempotency_key;
  if (key !== undefined && (key.length < 1 || key.length > MAILBOX_LIMITS.idempotencyKeyChars))
    throw new AdmpError(
      'bad_request',
      `idempotency_key must be 1 to ${MAILBOX_LIMITS.idempotencyKeyChars} characters`,
      { field: 'idempotency_key' },
    );
}
