// The long polls' gate (src/core/gate.ts): never more than `limit` tasks at once, the
// waiting ones in arrival order, and a failing task still hands its slot on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGate } from '../../src/core/gate.js';

test('a gate runs at most `limit` tasks at once, the others in arrival order, through failures', async () => {
  const gate = createGate(3);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) =>
      gate.run(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, i % 7));
        running--;
        if (i % 5 === 0) throw new Error(`task ${i}`);
        return i;
      }),
    ),
  );
  assert.equal(most, 3);
  assert.deepEqual(
    started,
    Array.from({ length: 50 }, (_, i) => i),
  );
  results.forEach((r, i) =>
    assert.deepEqual(
      r,
      i % 5 === 0 ? { status: 'rejected', reason: new Error(`task ${i}`) } : { status: 'fulfilled', value: i },
    ),
  );
  // Every slot came back: a new batch runs three at once again.
  running = most = 0;
  await Promise.all(
    Array.from({ length: 6 }, () =>
      gate.run(async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
      }),
    ),
  );
  assert.equal(most, 3);
});
