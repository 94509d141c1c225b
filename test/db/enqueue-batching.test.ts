// The batcher behind the one enqueue path: concurrent callers share one commit,
// each is answered with its own row, and mail's batcher may wait to fill a commit.
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { createEnqueuer } from '../../src/mailbox/batcher.js';
import { enqueueRows } from '../../src/db/enqueue.js';

const item = (n: number) => ({
  to_agent_id: 'bob',
  channel: 'smtp' as const,
  from_agent: 'a@agents.partner.test',
  type: 't',
  body: { n },
  status: 'delivered' as const,
  ttl_sec: 60,
});

/** Rows of one commit share created_at (now() is the transaction's start). */
async function commitsOf(db: Awaited<ReturnType<typeof createTestDatabase>>, ids: string[]): Promise<number> {
  const { rows } = await db.pool.query(
    'SELECT count(DISTINCT created_at)::int AS n FROM message WHERE id = ANY($1::uuid[])',
    [ids],
  );
  return rows[0].n;
}

test('a filling batch leaves when it is full, or when its oldest message has waited fillWaitMs', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const enqueuer = createEnqueuer(db.pool, { fillWaitMs: 300, fillRows: 4 });

  const started = performance.now();
  const full = await Promise.all([1, 2, 3, 4].map((n) => enqueuer.enqueue(item(n))));
  const fullMs = performance.now() - started;
  assert.equal(new Set(full.map((r) => r.id)).size, 4, 'each caller gets its own row');
  assert.equal(
    await commitsOf(
      db,
      full.map((r) => r.id),
    ),
    1,
    'four rows, one commit',
  );
  assert.ok(fullMs < 300, `a full batch did not wait for the timer (${fullMs.toFixed(0)} ms)`);

  const alone = performance.now();
  const [single] = await Promise.all([enqueuer.enqueue(item(5))]);
  assert.ok(performance.now() - alone >= 290, 'a lone message waited for company');
  const { rows } = await db.pool.query('SELECT body FROM message WHERE id = $1', [single!.id]);
  assert.deepEqual(rows[0].body, { n: 5 });
});

test('drain stores a waiting batch at once', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const enqueuer = createEnqueuer(db.pool, { fillWaitMs: 60_000 });
  const stored = enqueuer.enqueue(item(1));
  const started = performance.now();
  await enqueuer.drain();
  assert.ok(performance.now() - started < 10_000, 'drain did not wait for the fill timer');
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM message WHERE id = $1', [(await stored).id]);
  assert.equal(rows[0].n, 1);
});

test('without fillWaitMs, callers that arrive while a batch is in flight share the next commit', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const enqueuer = createEnqueuer(db.pool);
  const results = await Promise.all(Array.from({ length: 20 }, (_, n) => enqueuer.enqueue(item(n))));
  assert.equal(new Set(results.map((r) => r.id)).size, 20);
  // The first caller leaves alone at once; the 19 that queued behind it go together.
  assert.equal(
    await commitsOf(
      db,
      results.map((r) => r.id),
    ),
    2,
  );
});

test('a batch holding a duplicate and new keys: only a key reused with other content is a conflict', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const keyed = (n: number, body: object = { n }) => ({
    ...item(n),
    channel: 'http' as const,
    idempotency_key: `k-${n}`,
    source_fingerprint: createHash('sha256').update(JSON.stringify(body)).digest('hex'),
    body,
  });
  const [first] = await enqueueRows(db.pool, [keyed(1)]);
  // An agent's retry after a crash (k-1, same content) in one batch with fresh sends.
  const batch = await enqueueRows(db.pool, [keyed(2), keyed(1), keyed(3), keyed(4, { other: true }), keyed(4)]);
  assert.deepEqual(
    batch.map((r) => [r.duplicate, r.conflict]),
    [
      [false, false],
      [true, false],
      [false, false],
      [false, false],
      [true, true],
    ],
  );
  assert.equal(batch[1]!.id, first!.id);
});

test('message ids are UUID version 7: the time of their making in the first 48 bits, so the primary key grows at one end', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const before = Date.now();
  const first = await enqueueRows(db.pool, [item(1), item(2), item(3)]);
  await new Promise((r) => setTimeout(r, 5));
  const later = await enqueueRows(db.pool, [item(4)]);
  const after = Date.now();
  const ids = [...first, ...later].map((r) => r.id);
  for (const id of ids) {
    assert.match(
      id,
      /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      `${id} is a version 7 UUID`,
    );
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    assert.ok(ms >= before - 1 && ms <= after + 1, `${id} carries the time it was made`);
  }
  assert.ok(ids[3]! > ids[0]! && ids[3]! > ids[1]! && ids[3]! > ids[2]!, 'a later message sorts after earlier ones');
  assert.equal(new Set(ids).size, 4);
});
