// Typed errors. Each error code is mapped ONCE to an HTTP status and ONCE to an
// SMTP/LMTP reply (RFC 5321 §4.2 reply codes, RFC 3463 enhanced status codes).
// A fault of ours (storage, key server) is always temporary: 503 / 4xx, never 5xx SMTP.

export interface SmtpReply {
  readonly code: number;
  /** RFC 3463 enhanced status code. */
  readonly enhanced: string;
}

interface ErrorKind {
  readonly http: number;
  readonly smtp: SmtpReply;
}

const perm = (enhanced: string, code = 550): SmtpReply => ({ code, enhanced });
const temp = (enhanced: string, code = 451): SmtpReply => ({ code, enhanced });

/** The closed list of error codes. Adding one means choosing both mappings here. */
export const ERROR_KINDS = {
  bad_request: { http: 400, smtp: perm('5.6.0', 554) }, // RFC 3463 5.6.0: other media error
  invalid_json: { http: 400, smtp: perm('5.6.0', 554) },
  invalid_envelope: { http: 400, smtp: perm('5.6.0', 554) },
  unauthorized: { http: 401, smtp: perm('5.7.0', 530) },
  forbidden: { http: 403, smtp: perm('5.7.1') },
  // Mutual TLS on the agent API (HTTP only; the SMTP mappings are never sent).
  client_certificate_required: { http: 401, smtp: perm('5.7.0', 530) },
  client_certificate_rejected: { http: 401, smtp: perm('5.7.0', 530) },
  client_certificate_mismatch: { http: 403, smtp: perm('5.7.1') },
  not_found: { http: 404, smtp: perm('5.1.1') },
  unknown_recipient: { http: 404, smtp: perm('5.1.1') }, // 5.1.1 bad destination mailbox address
  // A subdomain under a wildcard of ADMP_DOMAINS that is no tenant: 5.1.2 bad destination system address.
  unknown_tenant: { http: 404, smtp: perm('5.1.2') },
  // A revoked address token: 5.1.6 destination mailbox has moved, no forwarding address.
  address_revoked: { http: 410, smtp: perm('5.1.6') },
  lease_conflict: { http: 409, smtp: perm('5.7.0') },
  idempotency_conflict: { http: 409, smtp: perm('5.7.0') },
  replayed_request: { http: 409, smtp: perm('5.7.0') }, // an HMAC request's nonce seen before
  payload_too_large: { http: 413, smtp: perm('5.3.4', 552) }, // 5.3.4 message too big for system
  // A repeated RCPT in one LMTP transaction: refused, so that accepted RCPTs and replies after DATA pair up (RFC 2033 §4.2).
  // Mail that looks like a delivery report but is not at a valid bounce tag of ours (src/core/bounce-tag.ts).
  report_refused: { http: 422, smtp: perm('5.7.1') },
  duplicate_recipient: { http: 400, smtp: perm('5.5.1', 503) },
  unsupported_media_type: { http: 415, smtp: perm('5.6.0', 554) },
  signature_invalid: { http: 422, smtp: perm('5.7.7') }, // 5.7.7 message integrity failure
  signature_missing: { http: 422, smtp: perm('5.7.7') },
  signature_expired: { http: 422, smtp: perm('5.7.7') },
  unknown_key: { http: 422, smtp: perm('5.7.7') },
  domain_auth_failed: { http: 422, smtp: perm('5.7.26') }, // RFC 7372 5.7.26: multiple authentication checks failed
  policy_denied: { http: 422, smtp: perm('5.7.1') }, // 5.7.1 delivery not authorized
  quota_exceeded: { http: 429, smtp: temp('4.2.2', 452) }, // 4.2.2 mailbox full
  rate_limited: { http: 429, smtp: temp('4.7.1') }, // over a rate limit: retry later (Retry-After / the MTA's queue)
  key_unavailable: { http: 503, smtp: temp('4.7.5') }, // key server unreachable: retry later
  storage_unavailable: { http: 503, smtp: temp('4.3.0') },
  timeout: { http: 503, smtp: temp('4.3.0') }, // our own deadline ran out: a fault of ours, retry later
  shutting_down: { http: 503, smtp: temp('4.3.2', 421) }, // 4.3.2 system not accepting network messages
  internal: { http: 500, smtp: temp('4.3.0') },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_KINDS;

export class AdmpError extends Error {
  override readonly name = 'AdmpError';
  /** `cause`: what was thrown underneath, for the log only (never in an answer). */
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
  get httpStatus(): number {
    return ERROR_KINDS[this.code].http;
  }
  get smtp(): SmtpReply {
    return ERROR_KINDS[this.code].smtp;
  }
  /** True when the sender should retry (4xx SMTP, 503 HTTP). */
  get temporary(): boolean {
    return ERROR_KINDS[this.code].smtp.code < 500;
  }
}

/** Invalid configuration: names the offending key. Thrown only at start. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`configuration ${key}: ${problem}`);
  }
}

// PostgreSQL SQLSTATEs that mean "the database is not usable right now" (08
// connection exception, 28 login refused, 3D000 database missing, 53 insufficient
// resources, 57P shutdown/crash/cannot connect now, 58 system error, 40001/40P01
// serialization failure/deadlock, 57014 statement_timeout, 55P03 lock_timeout) as
// opposed to a bug in our SQL.
const TRANSIENT_SQLSTATE = /^(08|28|3D000|53|57P|58|40001|40P01|57014|55P03)/;
// Class 22, data exception: PostgreSQL refused a value (out of range, not valid in its
// type, a character it cannot store). Retrying the same input cannot help, so it is the
// input's fault; inputs are checked before they get here (src/core/storable.ts,
// src/core/time.ts), and this names what any check missed instead of a 500 or a tempfail.
const DATA_EXCEPTION = /^22/;
const TRANSIENT_NODE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/**
 * Normalises anything thrown into an AdmpError. Unknown errors become `internal`
 * (never echoed to the client) unless they look like a lost database, which is
 * `storage_unavailable` so that senders retry.
 */
export function toAdmpError(err: unknown): AdmpError {
  if (err instanceof AdmpError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = typeof e?.message === 'string' ? e.message : '';
  if (
    TRANSIENT_SQLSTATE.test(code) ||
    TRANSIENT_NODE.has(code) ||
    /not currently accepting connections|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Query read timeout|Connection terminated due to connection timeout/i.test(
      msg,
    )
  ) {
    return new AdmpError('storage_unavailable', 'message store temporarily unavailable', undefined, err);
  }
  if (DATA_EXCEPTION.test(code)) return new AdmpError('bad_request', `value refused by the message store: ${msg}`);
  return new AdmpError('internal', 'internal error', undefined, err);
}

/** JSON error body of the HTTP API: `{"error":{"code","message"}}`. */
export function httpErrorBody(err: AdmpError): {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
} {
  return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}

/** SMTP/LMTP reply line text (without the code: smtp-server adds code and enhanced code). */
export function smtpReplyText(err: AdmpError): string {
  // Reply text must be one line of printable US-ASCII (RFC 5321 §4.2).
  return err.message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 400);
}
