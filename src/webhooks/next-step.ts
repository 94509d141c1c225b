// What happens to a pushed message after one attempt: acked on 2xx; on 410 Gone (the
// Standard Webhooks signal that the receiver no longer wants deliveries) or an address
// the SSRF guard refuses, the endpoint is disabled and the message goes back to the
// inbox; any other answer, a redirect (never followed) or a timeout is retried with
// exponential backoff and jitter until the attempts or the TTL run out, then it is dead.
// Pure: the clock and the random source are arguments.
import { retryDelayMs } from '../outbound/backoff.js';
import type { PushSettlement } from '../mailbox/mailbox.js';

export type PushAnswer =
  | { readonly kind: 'accepted'; readonly status: number }
  | { readonly kind: 'gone' }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'failed'; readonly status?: number; readonly error: string };

export type PushStep =
  | { readonly kind: 'ack' }
  | { readonly kind: 'disable'; readonly reason: string; readonly settle: PushSettlement }
  | { readonly kind: 'settle'; readonly settle: PushSettlement };

export interface PushPolicy {
  readonly maxAttempts: number;
  readonly backoffMs: number;
}

export function nextPushStep(
  row: { readonly attempts: number; readonly expires_at: Date },
  answer: PushAnswer,
  nowMs: number,
  policy: PushPolicy,
  log: Record<string, unknown>,
  random: () => number = Math.random,
): PushStep {
  if (answer.kind === 'accepted') return { kind: 'ack' };
  if (answer.kind === 'gone' || answer.kind === 'refused') {
    const reason = answer.kind === 'gone' ? 'the endpoint answered 410 Gone' : answer.reason;
    return { kind: 'disable', reason, settle: { kind: 'release', log: { ...log, disabled: reason } } };
  }
  const detail = { ...log, ...(answer.status !== undefined ? { status: answer.status } : {}), error: answer.error };
  if (row.attempts >= policy.maxAttempts)
    return { kind: 'settle', settle: { kind: 'dead', reason: 'max_attempts', log: detail } };
  const delayMs = retryDelayMs(row.attempts, policy.backoffMs, random);
  if (nowMs + delayMs >= row.expires_at.getTime())
    return { kind: 'settle', settle: { kind: 'dead', reason: 'ttl_expired', log: detail } };
  return { kind: 'settle', settle: { kind: 'retry', delayMs, log: detail } };
}
