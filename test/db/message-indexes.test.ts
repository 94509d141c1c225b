// A status change on `message` is never a HOT update (status is in the claim indexes'
// predicates), so every index on it gets a new entry on each claim and each ack unless its
// predicate excludes the new status. The queue's write cost therefore depends on `message`
// having no index without a status predicate besides its primary key; the per-agent reads
// that such an index used to serve must still read by an index (migrations/0021).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { claim } from '../../src/db/claim.js';
import { anyMessageTo, inboxDepth, inboxHolds, listDead, oldestDead, redrive } from '../../src/db/status.js';
import { searchMessages } from '../../src/db/message-search.js';
import { sweepExpired } from '../../src/db/sweeps.js';
import { removeFinished } from '../../src/db/retention.js';

test('every index on message but the primary key has a predicate on status', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const { rows } = await db.pool.query<{ name: string; primary: boolean; predicate: string | null }>(
    `SELECT c.relname AS name, i.indisprimary AS primary, pg_get_expr(i.indpred, i.indrelid) AS predicate
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'message'::regclass`,
  );
  assert.ok(rows.length >= 5, JSON.stringify(rows));
  for (const r of rows.filter((r) => !r.primary)) assert.match(r.predicate ?? '', /\bstatus\b/, r.name);
});

test("an agent's depth, dead letters, waiting count, search, sweep and retention read by index, not by scanning the queue", async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  // 20,000 messages for 2,000 other inboxes (a generic plan assumes an agent holds an
  // average share of the table: here it reads by index, as it would in a large queue), and
  // 60 for bob: 20 to stay delivered, 20 to lease, 20 to kill (their TTL is moved into the
  // past, then the sweeper runs).
  await db.pool.query(`SELECT count(*) FROM enqueue_message((
    SELECT jsonb_agg(jsonb_build_object('to_agent_id', CASE WHEN g <= 60 THEN 'bob' ELSE 'a' || (g % 2000) END,
             'channel', 'http', 'status', 'delivered', 'from_agent', 'x@agents.test', 'type', 't',
             'ttl_sec', 3600, 'body', jsonb_build_object('i', g)))
      FROM generate_series(1, 20060) g))`);
  assert.equal((await claim(db.pool, 'bob', 20, 600)).rows.length, 20);
  await db.pool.query(
    "UPDATE message SET expires_at = now() - interval '1 second' WHERE to_agent_id = 'bob' AND status = 'delivered' AND (body->>'i')::int > 40",
  );
  const swept = await sweepExpired(db.pool, 5);
  assert.deepEqual(swept.dead, [{ reason: 'ttl_expired', n: 20 }]);
  await db.pool.query('VACUUM ANALYZE message');
  await db.pool.query('VACUUM ANALYZE message_search');

  // One connection, so its statistics can be flushed before they are read.
  const c = await db.pool.connect();
  try {
    const seqScans = async () => {
      await c.query('SELECT pg_stat_force_next_flush()');
      await c.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await c.query<{ n: string }>(
        "SELECT coalesce(sum(seq_scan), 0)::text AS n FROM pg_stat_user_tables WHERE relname IN ('message', 'message_search')",
      );
      return Number(rows[0]!.n);
    };
    const before = await seqScans();
    assert.deepEqual(Object.fromEntries(Object.entries(await inboxDepth(c, 'bob')).filter(([, n]) => n > 0)), {
      delivered: 20,
      leased: 20,
      dead: 20,
    });
    assert.equal((await listDead(c, 'bob', 100)).length, 20);
    assert.equal(await inboxHolds(c, 'bob', 40), true);
    assert.equal(await inboxHolds(c, 'bob', 41), false);
    assert.ok(await anyMessageTo(c, 'bob'));
    assert.equal((await searchMessages(c, { agent: 'bob', limit: 100 })).length, 60);
    assert.equal((await searchMessages(c, { agent: 'bob', status: 'dead', limit: 100 })).length, 20);
    const dead = await oldestDead(c, 'bob', 15);
    assert.equal((await oldestDead(c, 'bob', 15, dead[14])).length, 5);
    assert.equal(
      (
        await redrive(
          c,
          'bob',
          dead.map((d) => d.id),
        )
      ).length,
      15,
    );
    assert.deepEqual(await sweepExpired(c, 5), { returned: 0, dead: [] });
    // Retention finds finished messages, outbound ones included, by message_retention (migrations/0023).
    assert.deepEqual(await removeFinished(c, { olderThanSec: 86_400, returnPathSec: 86_400 }, 100), {
      messages: 0,
      dedupeKeys: 0,
    });
    assert.equal(await seqScans(), before, 'a per-agent read scanned message or message_search');
  } finally {
    c.release();
  }
});
