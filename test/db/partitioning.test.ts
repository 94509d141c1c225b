// docs/scaling.md promises that message can be hash-partitioned by to_agent_id with
// enqueue_message unchanged. This runs the document's own migration and checks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createTestDatabase } from '../helpers/db.js';
import { enqueueRows } from '../../src/db/enqueue.js';
import { claim } from '../../src/db/claim.js';

const doc = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8');
const partitionSql = /## Hash partitioning[\s\S]*?```sql\n([\s\S]*?)```/.exec(doc)![1]!;

test('the documented hash-partitioning migration works, and enqueue, dedupe and claim still do', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const item = (to: string, key: string) => ({
    to_agent_id: to,
    channel: 'http' as const,
    from_agent: 'a@agents.test',
    type: 't',
    body: { to },
    status: 'delivered' as const,
    ttl_sec: 60,
    idempotency_key: key,
  });
  await enqueueRows(db.pool, [item('bob', 'k0')]);
  await db.pool.query(partitionSql);
  const { rows } = await db.pool.query(
    "SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'message'::regclass",
  );
  assert.equal(rows[0].n, 16);
  const r = await enqueueRows(db.pool, [item('bob', 'k1'), item('carol', 'k1'), item('bob', 'k1'), item('bob', 'k0')]);
  assert.deepEqual(
    r.map((x) => x.duplicate),
    [false, false, true, true],
  );
  assert.equal(r[2]!.id, r[0]!.id);
  const got = await claim(db.pool, 'bob', 10, 30);
  assert.equal(got.rows.length, 2, 'the row copied over and the new one');
});
