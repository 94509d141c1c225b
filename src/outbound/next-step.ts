// What happens to a message after one submission attempt: sent, failed, or queued
// again with backoff until the deadline, after which it is failed with reason
// `timeout`. Pure: the clock and the random source are arguments.
import { retryDelayMs } from './backoff.js';
import type { RelayOutcome } from './relay-answer.js';
import type { Outcome } from '../mailbox/outbound-queue.js';

export interface RetryPolicy {
  readonly backoffMs: number;
  readonly deadlineSec: number;
}

export function nextStep(
  row: { attempts: number; created_at: Date },
  answer: RelayOutcome,
  nowMs: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Outcome {
  const attempt = row.attempts;
  if (answer.kind === 'accepted') return { status: 'sent', log: { event: 'sent', attempt, relay: answer.response } };
  const detail = { attempt, code: answer.code, diagnostic: answer.diagnostic };
  if (answer.kind === 'permanent') return { status: 'failed', log: { event: 'failed', reason: 'rejected', ...detail } };
  const retryInMs = retryDelayMs(attempt, policy.backoffMs, random);
  if (nowMs + retryInMs > row.created_at.getTime() + policy.deadlineSec * 1000) {
    return { status: 'failed', log: { event: 'failed', reason: 'timeout', ...detail } };
  }
  return { status: 'queued', retryInMs, log: { event: 'deferred', ...detail } };
}
