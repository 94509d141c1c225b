// The rate quotas' count (enqueue_message, migrations/0018) on a real PostgreSQL, with the
// clock passed in: a burst, then one per interval; several keys and callers in one
// statement; a refusal's retry time; keys at rest swept. And how the count rides in the
// enqueue: an item over a quota is refused while the rest of its batch commits, a mail's
// other recipients are refused with it, a duplicate spends no quota, a failed statement
// counts nothing, and the batcher's isolating retry counts each message once; a sweep skips
// the keys a batch holds (no deadlock); concurrent sends share one read of the policy rules.
// And what a refusal says: its metric and log fields (rule, key, window).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { newMessage } from '../helpers/new-message.js';
import { enqueueRows, type QuotaCounter } from '../../src/db/enqueue.js';
import { sweepQuotas } from '../../src/db/rate-quota.js';
import { createEnqueuer } from '../../src/mailbox/batcher.js';
import { createQuotaGate, retryAfterSec } from '../../src/policy/rate-quotas.js';
import { createMetrics } from '../../src/metrics.js';
import type { Policy } from '../../src/core/policy.js';
import { quotaCharges } from '../../src/core/rate-quota.js';
import { EMPTY_POLICY } from '../../src/core/policy.js';
import { addRule } from '../../src/db/policy-rules.js';
import { createPolicySource } from '../../src/policy/store.js';

const S = 1_000_000;
const T0 = 1_800_000_000 * S;

const item = newMessage;

/** A counter of burst 3, one place a second. */
const counter = (key: string): QuotaCounter => ({ counter: key, intervalUs: S, burst: 3 });

type Db = Awaited<ReturnType<typeof createTestDatabase>>;

async function stored(db: Db): Promise<number> {
  return (await db.pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n;
}

async function tat(db: Db, key: string): Promise<number | undefined> {
  const { rows } = await db.pool.query('SELECT tat_us FROM rate_quota WHERE key = $1', [key]);
  return rows[0] ? Number(rows[0].tat_us) : undefined;
}

test('GCRA in the enqueue: burst, then one per interval, exact retry times, keys apart, swept at rest', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  let n = 0;
  /** `count` messages counted by each key, one item per message; which were refused. */
  const send = async (at: number, ...c: [key: string, count: number][]) => {
    const items = c.flatMap(([key, count]) => Array.from({ length: count }, () => ({ item: item(n++), key })));
    const r = await enqueueRows(
      db.pool,
      items.map((x) => x.item),
      { quotas: { counters: items.map((x) => [counter(x.key)]), groups: items.map((_, i) => i), nowUs: at } },
    );
    return r.map((x) => x.refused);
  };

  // 5 at once against a burst of 3: the first 3 pass, and a, b are counted apart.
  let r = await send(T0, ['a', 5], ['b', 1]);
  assert.deepEqual(r, [
    undefined,
    undefined,
    undefined,
    { counter: 'a', tatUs: T0 + 3 * S },
    { counter: 'a', tatUs: T0 + 3 * S },
    undefined,
  ]);
  assert.equal(await tat(db, 'b'), T0 + S);
  assert.equal(await stored(db), 4, 'the refused items are not stored');
  // Half an interval later nothing has freed up; a full one later, one place.
  r = await send(T0 + S / 2, ['a', 1]);
  assert.deepEqual(r, [{ counter: 'a', tatUs: T0 + 3 * S }], 'a refusal does not push the time out');
  r = await send(T0 + S, ['a', 2]);
  assert.deepEqual(r, [undefined, { counter: 'a', tatUs: T0 + 4 * S }]);
  // Long quiet: the burst is back, never more.
  r = await send(T0 + 100 * S, ['a', 10]);
  assert.equal(r.filter((x) => x === undefined).length, 3);
  assert.equal(await tat(db, 'a'), T0 + 103 * S);

  // The refusal's retry time, from the charge the policy makes.
  const [charge] = quotaCharges(
    {
      rules: [{ id: 'q', from: '*', to: '*', action: 'limit', quota: { per: 'sender', limit: 3, window_sec: 3 } }],
      sasl: [],
      max_inbox: 0,
    },
    { from: 'a@x', to: 'b@y', type: 't' },
  );
  assert.equal(charge!.counter, 'q|sender=a@x');
  assert.equal(retryAfterSec(charge!, T0 + 103 * S, T0 + 100 * S), 1, 'the next place frees up in 1 s');
  assert.equal(retryAfterSec(charge!, T0 + 103 * S, T0 + 100 * S + S / 4), 1, 'rounded up, at least 1 s');

  // Sweep: a key whose tat has passed is gone; one still counting stays.
  assert.equal(await sweepQuotas(db.pool, T0 + 50 * S), 1, 'b is at rest');
  const { rows } = await db.pool.query('SELECT key FROM rate_quota ORDER BY key');
  assert.deepEqual(
    rows.map((x) => x.key),
    ['a'],
  );
});

test('a group with one item over a quota is refused whole, its keys given back; the rest of the batch commits', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const keyed = (n: number, to: string) =>
    item(n, { to_agent_id: to, channel: 'smtp', source_fingerprint: n.toString(16).padStart(64, '0') });
  // `full` has no place left; `free` has plenty.
  await enqueueRows(db.pool, [item(100)], {
    quotas: { counters: [[{ counter: 'full', intervalUs: 3600 * S, burst: 1 }]], groups: [0], nowUs: T0 },
  });
  const full: QuotaCounter = { counter: 'full', intervalUs: 3600 * S, burst: 1 };
  const free = counter('free');
  // One mail to carol and dave (group 0; dave's quota is spent), one to erin (group 1).
  const mail = [keyed(1, 'carol'), keyed(1, 'dave'), keyed(2, 'erin')];
  const r = await enqueueRows(db.pool, mail, {
    quotas: { counters: [[free], [free, full], [free]], groups: [0, 0, 1], nowUs: T0 },
  });
  assert.deepEqual(
    r.map((x) => x.refused),
    [{}, { counter: 'full', tatUs: T0 + 3600 * S }, undefined],
  );
  const { rows } = await db.pool.query("SELECT to_agent_id FROM message WHERE to_agent_id <> 'bob1' ORDER BY 1");
  assert.deepEqual(
    rows.map((x) => x.to_agent_id),
    ['erin'],
    'nothing of the refused mail is stored',
  );
  const { rows: keys } = await db.pool.query('SELECT to_agent_id FROM message_dedupe ORDER BY 1');
  assert.deepEqual(
    keys.map((x) => x.to_agent_id),
    ['erin'],
    'the refused mail holds no replay key: its retry is stored as new',
  );
  // The retry, once dave's quota allows: stored new for both, not answered as a duplicate.
  const again = await enqueueRows(db.pool, mail.slice(0, 2), {
    quotas: { counters: [[free], [free, full]], groups: [0, 0], nowUs: T0 + 3600 * S },
  });
  assert.deepEqual(
    again.map((x) => [x.duplicate, x.refused]),
    [
      [false, undefined],
      [false, undefined],
    ],
  );
});

test('a duplicate spends no quota; a failed statement counts nothing; the batcher counts each message once', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const one = { counter: 'one', intervalUs: 3600 * S, burst: 1 };
  const retry = item(1, { idempotency_key: 'k1', source_fingerprint: 'ab'.repeat(32) });
  const q = (nowUs: number) => ({ counters: [[one]], groups: [0], nowUs });
  const [first] = await enqueueRows(db.pool, [retry], { quotas: q(T0) });
  assert.equal(first!.refused, undefined);
  // The quota is spent, yet the agent's retry of the stored send is answered as before.
  const [again] = await enqueueRows(db.pool, [retry], { quotas: q(T0 + S) });
  assert.deepEqual([again!.duplicate, again!.id, again!.refused], [true, first!.id, undefined]);
  assert.equal(await tat(db, 'one'), T0 + 3600 * S, 'the duplicate was not counted');

  // A statement that fails after counting (an item PostgreSQL cannot store) rolls the count back.
  const poisoned = item(2, { ttl_sec: 'soon' as unknown as number });
  const free = counter('free');
  await assert.rejects(
    enqueueRows(db.pool, [item(3), poisoned], {
      quotas: { counters: [[free], [free]], groups: [0, 1], nowUs: T0 },
    }),
  );
  assert.equal(await tat(db, 'free'), undefined, 'nothing counted');

  // Through the batcher: the poisoned caller shares a batch with two others, which is
  // retried caller by caller; the others are stored and each counted once.
  const enqueuer = createEnqueuer(db.pool, { fillWaitMs: 200, fillRows: 3, nowUs: () => T0 });
  const results = await Promise.allSettled([
    enqueuer.enqueue(item(4), [free]),
    enqueuer.enqueue(poisoned, [free]),
    enqueuer.enqueue(item(5), [free]),
  ]);
  assert.deepEqual(
    results.map((x) => x.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.equal(await tat(db, 'free'), T0 + 2 * S, 'two messages stored, two counted');
});

test('concurrent batches over the same keys in opposite order neither deadlock nor miscount', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const keys = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`);
  const wide = (key: string): QuotaCounter => ({ counter: key, intervalUs: 1, burst: 1_000_000 });
  // Each batch: one item per key, and three more for the first key (counted 4 times).
  const batch = (order: string[]) => {
    const ks = [...order, order[0]!, order[0]!, order[0]!];
    return enqueueRows(
      db.pool,
      ks.map((_, i) => item(i)),
      { quotas: { counters: ks.map((k) => [wide(k)]), groups: ks.map((_, i) => i), nowUs: T0 } },
    );
  };
  const rounds = 15;
  for (let r = 0; r < rounds; r++) {
    const results = await Promise.all([batch(keys), batch([...keys].reverse()), batch(keys)]);
    assert.ok(results.flat().every((x) => !x.refused));
  }
  const counted = (k: string) => tat(db, k).then((x) => x! - T0);
  // Per round the first key is counted 4 + 1 + 1 times (first of two batches, last of one).
  assert.equal(await counted('k00'), rounds * (4 + 1 + 4));
  assert.equal(await counted('k19'), rounds * (1 + 4 + 1));
  assert.equal(await counted('k07'), rounds * 3);
  assert.equal(await stored(db), rounds * 3 * 23);
});

test('a sweep skips the keys a batch is counting instead of waiting: no deadlock with an enqueue', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  // Three keys at rest, in the table's order a, b, c.
  await db.pool.query(
    "INSERT INTO rate_quota (key, tat_us, interval_us, burst, granted) SELECT k, $1, $2, 3, 1 FROM unnest('{a,b,c}'::text[]) AS k",
    [T0, S],
  );
  const q = (key: string, nowUs: number) => ({ quotas: { counters: [[counter(key)]], groups: [0], nowUs } });
  // A batch counts b and is still in its transaction (its commit not yet made).
  const batch = await db.pool.connect();
  try {
    await batch.query('BEGIN');
    await enqueueRows(batch, [item(1)], q('b', T0 + 10 * S));
    // A DELETE in scan order took a, then waited for b; the batch counting a next then
    // waited for the sweep: a deadlock, broken only after deadlock_timeout. The sweep
    // passes b by and returns at once.
    const sweep = sweepQuotas(db.pool, T0 + 100 * S);
    const swept = await Promise.race([sweep, new Promise((ok) => setTimeout(ok, 3000, 'still waiting'))]);
    try {
      assert.equal(swept, 2, 'a and c swept; b, held by the batch, skipped');
    } finally {
      if (swept === 'still waiting') await batch.query('ROLLBACK');
    }
    await enqueueRows(batch, [item(2)], q('a', T0 + 10 * S));
    await batch.query('COMMIT');
  } finally {
    batch.release();
  }
  assert.equal(await tat(db, 'b'), T0 + 11 * S, 'b counted from where it was');
  assert.equal(await tat(db, 'a'), T0 + 11 * S, 'a starts afresh');
  assert.equal(await tat(db, 'c'), undefined);
  // Once the batch is done, the next sweep takes b too.
  assert.equal(await sweepQuotas(db.pool, T0 + 100 * S), 2);
});

test('sends that find the policy copy old wait for one read of the rules, not one read each', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await addRule(db.pool, {
    from: '*',
    to: '*',
    action: 'limit',
    quota: { per: 'sender', limit: 10, window_sec: 60 },
  });
  let reads = 0;
  const counting = {
    query: ((...args: Parameters<typeof db.pool.query>) => {
      reads++;
      return db.pool.query(...args);
    }) as typeof db.pool.query,
  };
  const source = createPolicySource(counting, EMPTY_POLICY);
  // 32 sends at once (the bench's connections) with no copy yet: one read serves them all.
  const seen = await Promise.all(Array.from({ length: 32 }, () => source.current()));
  assert.equal(reads, 1);
  assert.ok(seen.every((p) => p === seen[0]));
  assert.equal(seen[0]!.rules[0]!.quota?.limit, 10);
  assert.equal(await source.current(), seen[0], 'then the copy, without a read');
  assert.equal(reads, 1);
  // An operator's dry run still reads the table now.
  await source.fresh();
  assert.equal(reads, 2);
});

test('a refusal names its rule, key and window in the metric, the log line and the error', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const policy: Policy = {
    rules: [
      { id: 'loose', from: '*', to: '*', action: 'limit', quota: { per: 'pair', limit: 1000, window_sec: 1 } },
      { id: 'tight', from: '*', to: '*', action: 'limit', quota: { per: 'sender', limit: 1, window_sec: 60 } },
    ],
    sasl: [],
    max_inbox: 0,
  };
  const metrics = createMetrics();
  const lines: Record<string, unknown>[] = [];
  const gate = createQuotaGate({
    policy: { current: async () => policy, fresh: async () => policy },
    metrics,
    log: { info: (fields: Record<string, unknown>) => void lines.push(fields) },
    nowUs: () => T0,
  });
  const enqueuer = createEnqueuer(db.pool, { nowUs: () => T0 });
  const subject = { from: 'a@agents.test', to: 'bob@agents.test', type: 't' };
  const charges = await gate.charges(subject);
  assert.deepEqual(
    charges.map((c) => c.counter),
    ['loose|pair=a@agents.test>bob@agents.test', 'tight|sender=a@agents.test'],
  );
  assert.equal((await enqueuer.enqueue(item(1), charges)).refused, undefined);
  const r = await enqueuer.enqueue(item(2), charges);
  assert.deepEqual(r.refused, { counter: 'tight|sender=a@agents.test', tatUs: T0 + 60 * S });
  const error = gate.refusal(charges, r.refused!, subject, 'mail')!;
  assert.equal(error.code, 'rate_limited');
  assert.deepEqual(error.details, { rule: 'tight', key: 'sender=a@agents.test', window: '60s', retry_after_sec: 60 });
  assert.deepEqual(lines, [
    {
      event: 'rate_quota',
      scope: 'mail',
      rule: 'tight',
      key: 'sender=a@agents.test',
      window: '60s',
      retry_after_sec: 60,
      from: 'a@agents.test',
      to: 'bob@agents.test',
    },
  ]);
  assert.match(await metrics.registry.metrics(), /admp_rate_limited_total\{scope="mail",rule="tight",window="60s"\} 1/);
  // Refused only with the rest of its mail: no refusal of its own, nothing counted or logged.
  assert.equal(gate.refusal(charges, {}, subject, 'mail'), undefined);
  assert.equal(lines.length, 1);
});
