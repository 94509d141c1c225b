// The counting statement of the rate quotas (src/db/rate-quota.ts) on a real PostgreSQL,
// with the clock passed in: a burst, then one per interval; several keys and callers in
// one statement; a refusal's retry time; keys at rest swept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { countQuotas, sweepQuotas } from '../../src/db/rate-quota.js';
import { retryAfterSec } from '../../src/policy/rate-quotas.js';
import { quotaCharges } from '../../src/core/rate-quota.js';

const S = 1_000_000;

test('GCRA in one statement: burst, then one per interval, exact retry times, keys apart, swept at rest', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const t0 = 1_800_000_000 * S;
  const count = async (at: number, ...c: [key: string, n: number][]) =>
    countQuotas(
      db.pool,
      c.map(([key, n]) => ({ key, n, intervalUs: S, burst: 3 })),
      at,
    );

  // 5 at once against a burst of 3: the first 3 pass, and a, b are counted apart.
  let r = await count(t0, ['a', 5], ['b', 1]);
  assert.deepEqual(r.get('a'), { granted: 3, tatUs: t0 + 3 * S });
  assert.deepEqual(r.get('b'), { granted: 1, tatUs: t0 + S });
  // Half an interval later nothing has freed up; a full one later, one place.
  r = await count(t0 + S / 2, ['a', 1]);
  assert.equal(r.get('a')!.granted, 0);
  assert.equal(r.get('a')!.tatUs, t0 + 3 * S, 'a refusal does not push the time out');
  r = await count(t0 + S, ['a', 2]);
  assert.deepEqual(r.get('a'), { granted: 1, tatUs: t0 + 4 * S });
  // Long quiet: the burst is back, never more.
  r = await count(t0 + 100 * S, ['a', 10]);
  assert.deepEqual(r.get('a'), { granted: 3, tatUs: t0 + 103 * S });

  // The refusal's retry time, from the charge the policy makes.
  const [charge] = quotaCharges(
    {
      rules: [{ id: 'q', from: '*', to: '*', action: 'limit', quota: { per: 'sender', limit: 3, window_sec: 3 } }],
      sasl: [],
      max_inbox: 0,
    },
    { from: 'a@x', to: 'b@y', type: 't' },
  );
  assert.equal(retryAfterSec(charge!, t0 + 103 * S, t0 + 100 * S), 1, 'the next place frees up in 1 s');
  assert.equal(retryAfterSec(charge!, t0 + 103 * S, t0 + 100 * S + S / 4), 1, 'rounded up, at least 1 s');

  // Sweep: a key whose tat has passed is gone; one still counting stays.
  assert.equal(await sweepQuotas(db.pool, t0 + 50 * S), 1, 'b is at rest');
  const { rows } = await db.pool.query('SELECT key FROM rate_quota ORDER BY key');
  assert.deepEqual(
    rows.map((x) => x.key),
    ['a'],
  );
});
