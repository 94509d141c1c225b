// Retention deletes finished messages past the retention period, with their dedupe keys and
// search entries, in batches, without touching the live queue or waiting on a claim; outbound
// mail too, once its bounce tag has expired; on one table, on the hash-partitioned table of
// docs/scaling.md, and (npm run test:citus) on Citus.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createTestDatabase, citusWorkers, type TestDatabase } from '../helpers/db.js';
import { enqueueRows } from '../../src/db/enqueue.js';
import { claim, ack, nack } from '../../src/db/claim.js';
import type { NewMessage } from '../../src/db/message-row.js';
import { removeFinished } from '../../src/db/retention.js';
import { startRetention } from '../../src/jobs/retention.js';
import { createHousekeeping } from '../../src/mailbox/housekeeping.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { sample } from '../ops/scrape.js';

const DAY = 86_400;
/** A retention period, with a bounce tag life that holds no inbound message back. */
const period = (olderThanSec: number, returnPathSec = 10 * DAY) => ({ olderThanSec, returnPathSec });
const item = (to: string, key: string | null, fingerprint?: string): NewMessage => ({
  to_agent_id: to,
  channel: 'http',
  from_agent: 'alice@agents.test',
  type: 't',
  body: { key },
  status: 'delivered',
  ttl_sec: 60,
  idempotency_key: key,
  source_fingerprint: fingerprint ?? null,
});

/** bob: k1 acked, k2 dead (attempts spent), k3 waiting, f4 (a fingerprint) acked; all but k3 backdated 2 days. */
async function history(db: TestDatabase) {
  await enqueueRows(db.pool, [
    item('bob', 'k1'),
    item('bob', 'k2'),
    item('bob', 'k3'),
    item('bob', null, 'ab'.repeat(32)),
  ]);
  const got = await claim(db.pool, 'bob', 4, 30);
  const byKey = new Map(got.rows.map((r) => [(r.body as { key: string | null }).key, r]));
  const lease = (k: string | null) => ({ id: byKey.get(k)!.id, lease_id: byKey.get(k)!.lease_id! });
  await ack(db.pool, 'bob', [lease('k1'), lease(null)]);
  await nack(db.pool, 'bob', lease('k2'), { kind: 'release', delaySec: 0 }, 1);
  await nack(db.pool, 'bob', lease('k3'), { kind: 'release', delaySec: 0 }, 5);
  const old = new Date(Date.now() - 2 * DAY * 1000);
  await db.pool.query(
    `UPDATE message SET acked_at = CASE WHEN status = 'acked' THEN $2::timestamptz END, expires_at = $2::timestamptz
      WHERE to_agent_id = $1 AND status IN ('acked', 'dead')`,
    ['bob', old],
  );
  return { k2: byKey.get('k2')!.id };
}

const statuses = async (db: TestDatabase) =>
  (
    await db.pool.query<{ s: string }>("SELECT status::text AS s FROM message WHERE to_agent_id = 'bob' ORDER BY 1")
  ).rows.map((r) => r.s);
/** The ids that have a search entry (migrations/0019_message_search_table.sql). */
const searchIds = async (db: TestDatabase) =>
  (
    await db.pool.query<{ id: string }>("SELECT id::text FROM message_search WHERE to_agent_id = 'bob' ORDER BY 1")
  ).rows.map((r) => r.id);
const messageIds = async (db: TestDatabase) =>
  (await db.pool.query<{ id: string }>("SELECT id::text FROM message WHERE to_agent_id = 'bob' ORDER BY 1")).rows.map(
    (r) => r.id,
  );
const keyCount = async (db: TestDatabase) =>
  (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_dedupe WHERE to_agent_id = 'bob'"))
    .rows[0]!.n;

async function removesHistoryOnly(t: TestContext, prepare?: (db: TestDatabase) => Promise<void>) {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await prepare?.(db);
  await history(db);
  assert.equal(await keyCount(db), 4);
  assert.equal((await searchIds(db)).length, 4, 'every message has its search entry');
  // Younger than the period: nothing goes.
  assert.deepEqual(await removeFinished(db.pool, period(3 * DAY), 100), { messages: 0, dedupeKeys: 0 });
  // In batches: one, then the rest.
  assert.deepEqual(await removeFinished(db.pool, period(DAY), 1), { messages: 1, dedupeKeys: 1 });
  assert.deepEqual(await removeFinished(db.pool, period(DAY), 100), { messages: 2, dedupeKeys: 2 });
  assert.deepEqual(await statuses(db), ['delivered'], 'the waiting message stays');
  assert.equal(await keyCount(db), 1, 'its dedupe key stays');
  assert.deepEqual(await searchIds(db), await messageIds(db), 'search entries go with their messages');
  // A removed message's key is free again; the live one still dedupes.
  const again = await enqueueRows(db.pool, [item('bob', 'k1'), item('bob', 'k3')]);
  assert.deepEqual(
    again.map((r) => r.duplicate),
    [false, true],
  );
}

test('retention removes acked and dead messages past the period, with their dedupe keys, in batches', (t) =>
  removesHistoryOnly(t));

test('retention works on the hash-partitioned table of docs/scaling.md', async (t) => {
  if (citusWorkers().length > 0) return t.skip('the Citus mode distributes the table instead');
  const doc = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8');
  const partitionSql = /## Hash partitioning[\s\S]*?```sql\n([\s\S]*?)```/.exec(doc)![1]!;
  await removesHistoryOnly(t, async (db) => {
    await db.pool.query(partitionSql);
  });
});

/** Outbound mail of alice's, ended as named, its last attempt `daysAgo` days ago. */
async function outboundHistory(db: TestDatabase, ends: [string, 'sent' | 'failed' | 'dead' | 'queued', number][]) {
  const rows = await enqueueRows(
    db.pool,
    ends.map(([key]) => ({ ...item('x@agents.partner.test', key), channel: 'smtp', status: 'queued' })),
  );
  for (const [i, [, status, daysAgo]] of ends.entries())
    await db.pool.query(
      `UPDATE message SET status = $2::message_status, next_attempt_at = now() - make_interval(secs => $3::float8 * 86400),
              expires_at = now() - make_interval(secs => $3::float8 * 86400) + interval '1 minute'
        WHERE id = $1`,
      [rows[i]!.id, status, daysAgo],
    );
  return Object.fromEntries(ends.map(([key], i) => [key, rows[i]!.id]));
}

const outboundKeys = async (db: TestDatabase) =>
  (
    await db.pool.query<{ id: string }>(
      "SELECT message_id::text AS id FROM message_dedupe WHERE to_agent_id = 'x@agents.partner.test' ORDER BY 1",
    )
  ).rows.map((r) => r.id);
const outboundSearch = async (db: TestDatabase) =>
  (
    await db.pool.query<{ id: string }>(
      "SELECT id::text FROM message_search WHERE to_agent_id = 'x@agents.partner.test' ORDER BY 1",
    )
  ).rows.map((r) => r.id);

test('retention removes finished outbound mail too, once past the period and the life of its bounce tag', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await history(db);
  const ids = await outboundHistory(db, [
    ['sent-old', 'sent', 20],
    ['failed-old', 'failed', 20],
    ['dead-old', 'dead', 20],
    ['queued-old', 'queued', 20],
    ['sent-tag-valid', 'sent', 5],
    ['failed-young', 'failed', 0.5],
  ]);
  const kept = [ids['queued-old']!, ids['sent-tag-valid']!, ids['failed-young']!].sort();
  // Retention 1 day, bounce tags live 10: the three old finished ones go, and bob's acked
  // and dead history (2 days old) is not held back by the tags' life.
  assert.deepEqual(await removeFinished(db.pool, period(DAY, 10 * DAY), 100), { messages: 6, dedupeKeys: 6 });
  assert.deepEqual(await statuses(db), ['delivered']);
  const left = async () =>
    (
      await db.pool.query<{ id: string }>(
        "SELECT id::text FROM message WHERE to_agent_id = 'x@agents.partner.test' ORDER BY 1",
      )
    ).rows.map((r) => r.id);
  assert.deepEqual(await left(), kept, 'the queued one, the one whose tag is valid, the young one');
  assert.deepEqual(await outboundKeys(db), kept, 'dedupe keys go with their messages');
  assert.deepEqual(await outboundSearch(db), kept, 'search entries go with their messages');
  // A retention period longer than the tags' life holds an outbound message back too.
  assert.deepEqual(await removeFinished(db.pool, period(30 * DAY, 4 * DAY), 100), { messages: 0, dedupeKeys: 0 });
  // Once the tag has expired, it goes.
  assert.deepEqual(await removeFinished(db.pool, period(DAY, 4 * DAY), 100), { messages: 1, dedupeKeys: 1 });
  assert.deepEqual(await left(), [ids['queued-old']!, ids['failed-young']!].sort());
  // Its idempotency key is free again.
  const again = await enqueueRows(db.pool, [
    { ...item('x@agents.partner.test', 'sent-tag-valid'), channel: 'smtp', status: 'queued' },
  ]);
  assert.equal(again[0]!.duplicate, false);
});

test("a tenant's agent, stored as its whole address, has its history counted from its ack or expiry, not as outbound mail", async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const carol = 'carol@acme.agents.test';
  const rows = await enqueueRows(db.pool, [{ ...item(carol, 't1'), channel: 'smtp' }, item(carol, 't2')]);
  // Created (and so next_attempt_at) 40 days ago; one acked, the other expired, 12 hours ago.
  // (Times as values: Citus refuses now() inside CASE.)
  const ago = (sec: number) => new Date(Date.now() - sec * 1000);
  await db.pool.query(
    `UPDATE message SET created_at = $2, next_attempt_at = $2, expires_at = $3,
            status = CASE WHEN id = $4 THEN 'acked'::message_status ELSE 'dead' END,
            acked_at = CASE WHEN id = $4 THEN $3::timestamptz END
      WHERE to_agent_id = $1`,
    [carol, ago(40 * DAY), ago(DAY / 2), rows[0]!.id],
  );
  assert.deepEqual(await removeFinished(db.pool, period(DAY), 100), { messages: 0, dedupeKeys: 0 });
  await db.pool.query(
    'UPDATE message SET acked_at = CASE WHEN acked_at IS NOT NULL THEN $2::timestamptz END, expires_at = $2 WHERE to_agent_id = $1',
    [carol, ago(2 * DAY)],
  );
  assert.deepEqual(await removeFinished(db.pool, period(DAY), 100), { messages: 2, dedupeKeys: 2 });
});

test('a retention batch in flight does not hold up claims, and keeps a dead letter redriven meanwhile', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const { k2 } = await history(db);
  const deleting = await db.pool.connect();
  const redriving = await db.pool.connect();
  try {
    await deleting.query('BEGIN');
    assert.equal((await removeFinished(deleting, period(DAY), 100)).messages, 3);
    // The deleting transaction is open: an enqueue and a claim go through regardless.
    await enqueueRows(db.pool, [item('bob', 'k5')]);
    assert.equal((await claim(db.pool, 'bob', 10, 30)).rows.length, 2);
    await deleting.query('ROLLBACK');
    // A redrive holds the dead letter when retention comes: retention waits for it, then
    // re-checks the row under its lock and leaves the redriven message alone.
    await redriving.query('BEGIN');
    await redriving.query("UPDATE message SET status = 'delivered' WHERE to_agent_id = 'bob' AND id = $1", [k2]);
    const removing = removeFinished(db.pool, period(DAY), 100);
    await new Promise((r) => setTimeout(r, 300));
    await redriving.query('COMMIT');
    assert.equal((await removing).messages, 2);
  } finally {
    deleting.release(true);
    redriving.release(true);
  }
  assert.deepEqual(await statuses(db), ['delivered', 'leased', 'leased'], 'the redriven letter and the two claimed');
});

test('the retention job counts what it removed; ADMP_RETENTION_DAYS=0 turns it off', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await history(db);
  const log = createLogger('silent');
  const housekeeping = createHousekeeping(db.pool, { maxAttempts: 5, outboundDeadlineSec: DAY });
  assert.equal(startRetention(housekeeping, log, { days: 0, batch: 10 }), undefined);
  const metrics = createMetrics();
  const job = startRetention(housekeeping, log, { days: 1, batch: 2, intervalMs: 10, pauseMs: 1 }, metrics)!;
  const deadline = Date.now() + 10_000;
  const removed = async (kind: string) =>
    sample(await metrics.registry.metrics(), 'admp_retention_removed_total', { kind }) ?? 0;
  while ((await removed('message')) < 3) {
    assert.ok(Date.now() < deadline, 'the job did not remove the history');
    await new Promise((r) => setTimeout(r, 20));
  }
  await job.stop();
  assert.equal(await removed('message'), 3);
  assert.equal(await removed('dedupe_key'), 3);
  assert.deepEqual(await statuses(db), ['delivered']);
});
