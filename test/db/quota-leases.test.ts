// Quotas with a large burst counted by blocks (src/mailbox/quota-leases.ts) on a real
// PostgreSQL, each "instance" a batcher with its own blocks, as src/app/server.ts wires
// them: two instances sending at once admit exactly the burst, never more; a block
// expires and its units are not used after; an instance started afresh never admits
// more; duplicates and messages refused by another quota give their unit back, a fault
// does not; a reservation the database stalls is a temporary fault that spends nothing;
// small quotas stay exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { newMessage } from '../helpers/new-message.js';
import type { QuotaCounter } from '../../src/db/enqueue.js';
import type { NewMessage } from '../../src/db/message-row.js';
import { createPool } from '../../src/db/pool.js';
import { toAdmpError } from '../../src/errors.js';
import { createEnqueuer, type Enqueuer } from '../../src/mailbox/batcher.js';
import { blockSize, createQuotaLeases } from '../../src/mailbox/quota-leases.js';

const S = 1_000_000;
const T0 = 1_800_000_000 * S;

type Db = Awaited<ReturnType<typeof createTestDatabase>>;

let n = 0;
const item = (extra: Partial<NewMessage> = {}): NewMessage => newMessage(n++, extra);

/** 1,000 an hour, all at once: blocks of 16 (16 × 3.6 s, a minute of the quota). */
const hourly: QuotaCounter = { counter: 'big|sender=a@agents.test', intervalUs: 3_600_000, burst: 1000 };
/** 1,000 a second: blocks of 62 (62 ms of the quota), each kept for 10 s. */
const fast: QuotaCounter = { counter: 'fast|sender=a@agents.test', intervalUs: 1000, burst: 1000 };

/** One instance: a batcher with its own blocks, on the shared database and clock. */
const instance = (db: Db, clock: () => number): Enqueuer =>
  createEnqueuer(db.pool, { nowUs: clock, leases: createQuotaLeases(db.pool, clock) });

async function stored(db: Db): Promise<number> {
  return (await db.pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n;
}

async function tat(db: Db, key: string): Promise<number | undefined> {
  const { rows } = await db.pool.query('SELECT tat_us FROM rate_quota WHERE key = $1', [key]);
  return rows[0] ? Number(rows[0].tat_us) : undefined;
}

/** Sends until one is refused; how many were stored. */
async function untilRefused(e: Enqueuer, c: QuotaCounter): Promise<number> {
  for (let k = 0; ; k++) if ((await e.enqueue(item(), [c])).refused) return k;
}

test('block sizes: a sixteenth of the burst, at most a minute of the quota; small bursts exact', () => {
  assert.equal(blockSize(hourly), 16);
  assert.equal(blockSize(fast), 62);
  assert.equal(blockSize({ counter: 'x', intervalUs: 1, burst: 1_000_000 }), 1024);
  // docs/policy.md's table: 6,000 a minute; 10,000 an hour.
  assert.equal(blockSize({ counter: 'x', intervalUs: 10_000, burst: 6000 }), 375);
  assert.equal(blockSize({ counter: 'x', intervalUs: 360_000, burst: 10_000 }), 166);
  assert.equal(blockSize({ counter: 'x', intervalUs: S, burst: 60 }), 0, '60 a minute: exact');
  assert.equal(blockSize({ counter: 'x', intervalUs: 3600 * S, burst: 1000 }), 0, 'a block would span hours');
});

test('two instances sending at once admit exactly the burst, never more', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const clock = () => T0;
  const [a, b] = [instance(db, clock), instance(db, clock)];
  const once = item({ idempotency_key: 'k0' });
  const first = await a.enqueue(once, [hourly]);
  // 1,200 at once (600 through each, 50 in flight each) against a burst of 1,000.
  const wave = (e: Enqueuer) =>
    Promise.all(Array.from({ length: 600 }, () => e.enqueue(item(), [hourly]))).then(
      (rs) => rs.filter((r) => !r.refused).length,
    );
  const [fromA, fromB] = await Promise.all([wave(a), wave(b)]);
  assert.ok(1 + fromA + fromB <= 1000, `never more: 1 + ${fromA} + ${fromB}`);
  assert.ok(1 + fromA + fromB >= 1000 - 2 * 16, `at most a block per instance unused: ${1 + fromA + fromB}`);
  // Each goes on until refused: then neither holds a unit, and every reserved one was used.
  const rest = (await untilRefused(a, hourly)) + (await untilRefused(b, hourly));
  assert.equal(1 + fromA + fromB + rest, 1000);
  assert.equal(await stored(db), 1000);
  assert.equal(await tat(db, hourly.counter), T0 + 1000 * hourly.intervalUs, 'every unit counted once');

  // The refusal says when the next place frees up, as the exact count does.
  const r = await a.enqueue(item(), [hourly]);
  assert.deepEqual(r.refused, { counter: hourly.counter, tatUs: T0 + 1000 * hourly.intervalUs });
  // With the quota spent, a retry of a stored message is still answered as one, by either instance.
  for (const e of [a, b]) {
    const again = await e.enqueue({ ...once }, [hourly]);
    assert.deepEqual([again.duplicate, again.id, again.refused], [true, first.id, undefined]);
  }
  assert.equal(await stored(db), 1000);
});

test('a block expires after 10 s (its span is shorter): its units are not used after', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  let now = T0;
  const e = instance(db, () => now);
  assert.equal((await e.enqueue(item(), [fast])).refused, undefined);
  assert.equal(await tat(db, fast.counter), T0 + 62 * 1000, 'one block of 62 reserved');
  now += 10 * S - 1;
  for (let k = 0; k < 61; k++) assert.equal((await e.enqueue(item(), [fast])).refused, undefined);
  assert.equal(await tat(db, fast.counter), T0 + 62 * 1000, 'the block served them, no reservation');

  // Used up: the next reserves; that block expires unused after 10 s, and a send then reserves afresh.
  now = T0 + 20 * S;
  assert.equal((await e.enqueue(item(), [fast])).refused, undefined);
  assert.equal(await tat(db, fast.counter), T0 + 20 * S + 62 * 1000);
  now = T0 + 30 * S;
  assert.equal((await e.enqueue(item(), [fast])).refused, undefined);
  assert.equal(await tat(db, fast.counter), T0 + 30 * S + 62 * 1000, 'a new block, the old one dropped');
  assert.equal(await stored(db), 64);
});

test('an instance started afresh never admits more: the units its predecessor held are lost', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const clock = () => T0;
  assert.equal((await instance(db, clock).enqueue(item(), [hourly])).refused, undefined);
  // The first instance is gone with 15 units of its block; the next one finds 1,000 - 16.
  assert.equal(await untilRefused(instance(db, clock), hourly), 1000 - 16);
  assert.equal(await stored(db), 1 + 1000 - 16);
});

test('duplicates and messages refused by another quota give their unit back', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const e = instance(db, () => T0);
  const once = item({ idempotency_key: 'k1' });
  const first = await e.enqueue(once, [hourly]);
  for (let k = 0; k < 20; k++) {
    const again = await e.enqueue({ ...once }, [hourly]);
    assert.equal(again.duplicate, true);
    assert.equal(again.id, first.id);
  }
  // An exact quota of one refuses the second of these; its unit of the block comes back.
  const tight: QuotaCounter = { counter: 'tight|sender=a@agents.test', intervalUs: 3600 * S, burst: 1 };
  assert.equal((await e.enqueue(item(), [hourly, tight])).refused, undefined);
  assert.deepEqual((await e.enqueue(item(), [hourly, tight])).refused, {
    counter: tight.counter,
    tatUs: T0 + 3600 * S,
  });
  // A mail of two recipients, one over the exact quota: refused whole, both units back.
  const mail = await e.enqueueAll([item(), item()], { counters: [[hourly], [hourly, tight]] });
  assert.deepEqual(
    mail.map((r) => Boolean(r.refused)),
    [true, true],
  );
  // So one block (16) served 2 stored messages: 14 more pass without a reservation.
  for (let k = 0; k < 14; k++) assert.equal((await e.enqueue(item(), [hourly])).refused, undefined);
  assert.equal(await tat(db, hourly.counter), T0 + 16 * hourly.intervalUs);
  assert.equal(await stored(db), 16);
});

test('after a fault the units stay spent (the commit may have happened unseen)', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const e = instance(db, () => T0);
  await assert.rejects(e.enqueue(item({ ttl_sec: 'soon' as unknown as number }), [hourly]));
  // The block of 16 lost that unit: 15 pass from it, the 16th reserves the next block.
  for (let k = 0; k < 15; k++) assert.equal((await e.enqueue(item(), [hourly])).refused, undefined);
  assert.equal(await tat(db, hourly.counter), T0 + 16 * hourly.intervalUs);
  assert.equal((await e.enqueue(item(), [hourly])).refused, undefined);
  assert.equal(await tat(db, hourly.counter), T0 + 32 * hourly.intervalUs);
  assert.equal(await stored(db), 16);
});

test('a reservation the database stalls is a temporary fault: nothing stored, nothing spent, the next one reserves', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  // The server's own pool settings: a statement waiting 200 ms for a lock fails (55P03).
  const pool = createPool(db.url, 2, { statementMs: 5000, lockMs: 200 });
  t.after(() => pool.end());
  const e = createEnqueuer(pool, { nowUs: () => T0, leases: createQuotaLeases(pool, () => T0) });
  await e.enqueue(item(), [hourly]);
  const before = await tat(db, hourly.counter);
  // Another session holds the key's row while this instance's block is spent.
  for (let k = 0; k < 15; k++) await e.enqueue(item(), [hourly]);
  const holder = await db.pool.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM rate_quota WHERE key = $1 FOR UPDATE', [hourly.counter]);
  const err = await e.enqueue(item(), [hourly]).then(
    () => assert.fail('a stalled reservation must not store'),
    (x: unknown) => x,
  );
  assert.equal(toAdmpError(err).code, 'storage_unavailable');
  await holder.query('ROLLBACK');
  holder.release();
  assert.equal(await stored(db), 16, 'the stalled send stored nothing');
  assert.equal(await tat(db, hourly.counter), before, 'and reserved nothing');
  // The database back: the same instance reserves the next block.
  assert.equal((await e.enqueue(item(), [hourly])).refused, undefined);
  assert.equal(await tat(db, hourly.counter), T0 + 32 * hourly.intervalUs);
  assert.equal(await stored(db), 17);
});

test('a mail whose recipient finds no unit is refused whole, the others keep theirs', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const e = instance(db, () => T0);
  const other: QuotaCounter = { ...hourly, counter: 'big|sender=b@agents.test' };
  // Spend other's whole burst (1,000) from another instance.
  assert.equal(
    await untilRefused(
      instance(db, () => T0),
      other,
    ),
    1000,
  );
  const mail = await e.enqueueAll([item(), item()], { counters: [[hourly], [other]] });
  assert.deepEqual(
    mail.map((r) => r.refused),
    [{}, { counter: other.counter, tatUs: T0 + 1000 * hourly.intervalUs }],
  );
  // Each item alone: the first is stored.
  const apart = await e.enqueueAll([item(), item()], { counters: [[hourly], [other]], atomic: false });
  assert.deepEqual(
    apart.map((r) => Boolean(r.refused)),
    [false, true],
  );
  assert.equal(await stored(db), 1001);
  // The unit the refused mail took came back: 15 left of the first block.
  for (let k = 0; k < 15; k++) assert.equal((await e.enqueue(item(), [hourly])).refused, undefined);
  assert.equal(await tat(db, hourly.counter), T0 + 16 * hourly.intervalUs);
});

test('small quotas stay exact with blocks on', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const clock = () => T0;
  const [a, b] = [instance(db, clock), instance(db, clock)];
  const small: QuotaCounter = { counter: 'small', intervalUs: S, burst: 60 };
  const rs = await Promise.all(Array.from({ length: 40 }, (_, k) => (k % 2 ? a : b).enqueue(item(), [small])));
  assert.equal(rs.filter((r) => !r.refused).length, 40);
  assert.equal(await tat(db, 'small'), T0 + 40 * S, 'counted one by one in the enqueue');
  assert.equal((await untilRefused(a, small)) + 40, 60);
});
