// Retry timing of the outbound worker (src/outbound/backoff.ts, next-step.ts), as tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_BACKOFF_MS, retryDelayMs } from '../../src/outbound/backoff.js';
import { nextStep } from '../../src/outbound/next-step.js';

// [attempt, base, random, want]: base·2^(attempt−1), capped at 1 h, then ½…1 of it.
const DELAYS: [number, number, number, number][] = [
  [1, 30_000, 0, 15_000],
  [1, 30_000, 1, 30_000],
  [2, 30_000, 0.5, 45_000],
  [3, 30_000, 1, 120_000],
  [8, 30_000, 1, MAX_BACKOFF_MS],
  [1000, 30_000, 0, MAX_BACKOFF_MS / 2],
  [0, 30_000, 1, 30_000],
  [5, 7_200_000, 1, 7_200_000],
];

for (const [attempt, base, random, want] of DELAYS)
  test(`retry delay after attempt ${attempt} (base ${base} ms, random ${random}) = ${want} ms`, () =>
    assert.equal(
      retryDelayMs(attempt, base, () => random),
      want,
    ));

const created = new Date('2026-01-01T00:00:00Z');
const policy = { backoffMs: 30_000, deadlineSec: 3600 };
const STEPS: [name: string, answer: Parameters<typeof nextStep>[1], nowMs: number, want: string][] = [
  ['accepted → sent', { kind: 'accepted', response: '250 ok' }, created.getTime(), 'sent sent'],
  [
    'permanent → failed (rejected)',
    { kind: 'permanent', code: 550, diagnostic: 'no' },
    created.getTime(),
    'failed failed rejected',
  ],
  [
    'temporary → queued again',
    { kind: 'temporary', code: 451, diagnostic: 'later' },
    created.getTime(),
    'queued deferred',
  ],
  [
    'temporary past the deadline → failed (timeout)',
    { kind: 'temporary', code: 451, diagnostic: 'later' },
    created.getTime() + 3600_000,
    'failed failed timeout',
  ],
];

for (const [name, answer, nowMs, want] of STEPS)
  test(`next step: ${name}`, () => {
    const o = nextStep({ attempts: 1, created_at: created }, answer, nowMs, policy, () => 1);
    assert.equal([o.status, o.log.event, o.log.reason].filter(Boolean).join(' '), want);
  });
