// The push worker's decision after one attempt (src/webhooks/next-step.ts), pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextPushStep, type PushAnswer } from '../../src/webhooks/next-step.js';

const now = Date.parse('2026-01-01T00:00:00Z');
const policy = { maxAttempts: 5, backoffMs: 1000 };
const row = (attempts: number, ttlMs = 86_400_000) => ({ attempts, expires_at: new Date(now + ttlMs) });
const step = (attempts: number, answer: PushAnswer, ttlMs?: number) =>
  nextPushStep(row(attempts, ttlMs), answer, now, policy, { endpoint: 'e' }, () => 1);

test('2xx acks', () => {
  assert.deepEqual(step(1, { kind: 'accepted', status: 204 }), { kind: 'ack' });
});

test('410 and a refused address disable the endpoint and release the message', () => {
  const gone = step(1, { kind: 'gone' });
  assert.equal(gone.kind, 'disable');
  assert.deepEqual(gone.kind === 'disable' && gone.settle, {
    kind: 'release',
    log: { endpoint: 'e', disabled: 'the endpoint answered 410 Gone' },
  });
  const refused = step(2, { kind: 'refused', reason: 'refused to connect to x: 127.0.0.1 is a loopback…' });
  assert.equal(refused.kind === 'disable' && refused.reason, 'refused to connect to x: 127.0.0.1 is a loopback…');
});

test('other answers retry with exponential backoff (jitter at its top here), then dead at max attempts', () => {
  const failed: PushAnswer = { kind: 'failed', status: 500, error: 'HTTP 500' };
  const delays = [1, 2, 3, 4].map((a) => {
    const s = step(a, failed);
    assert.equal(s.kind === 'settle' && s.settle.kind, 'retry');
    return s.kind === 'settle' && s.settle.kind === 'retry' ? s.settle.delayMs : -1;
  });
  assert.deepEqual(delays, [1000, 2000, 4000, 8000]);
  const last = step(5, failed);
  assert.deepEqual(last, {
    kind: 'settle',
    settle: { kind: 'dead', reason: 'max_attempts', log: { endpoint: 'e', status: 500, error: 'HTTP 500' } },
  });
});

test('a retry that would fall after the TTL ends the message now, reason ttl_expired', () => {
  const s = step(3, { kind: 'failed', error: 'no answer within 10000 ms' }, 3000);
  assert.deepEqual(s, {
    kind: 'settle',
    settle: { kind: 'dead', reason: 'ttl_expired', log: { endpoint: 'e', error: 'no answer within 10000 ms' } },
  });
});
