// The claim runs as a named statement with a generic plan (plan_cache_mode =
// force_generic_plan on our pool), planned without knowing LIMIT's value: PostgreSQL then
// assumes a tenth of the inbox is picked. Joined to `picked`, the update of the claimed
// rows was planned as a hash join over a bitmap scan of the whole inbox (21.8 ms for 10
// rows of a 20,000-message inbox instead of 0.5 ms). It must probe the primary key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { claim, claimForPush } from '../../src/db/claim.js';

test("a big inbox's claim (pull and push) updates the picked rows by primary key, not by scanning the inbox", async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await db.pool.query(`SELECT count(*) FROM enqueue_message((
    SELECT jsonb_agg(jsonb_build_object('to_agent_id', 'bob', 'channel', 'http', 'status', 'delivered',
             'from_agent', 'a@agents.test', 'type', 't', 'ttl_sec', 3600, 'body', jsonb_build_object('i', g),
             'idempotency_key', 'k' || g))
      FROM generate_series(1, 20000) g))`);
  await db.pool.query('VACUUM ANALYZE message');
  const c = await db.pool.connect();
  try {
    await c.query('SET plan_cache_mode = force_generic_plan');
    // Each call prepares its named statement on this connection; EXPLAIN EXECUTE shows its generic plan.
    assert.equal((await claim(c, 'bob', 10, 30)).rows.length, 10);
    assert.equal((await claimForPush(c, 'bob', 10, 30, [], 'endpoint', null)).rows.length, 10);
    for (const [name, extra] of [
      ['admp_claim', ''],
      ['admp_claim_push', ", 'endpoint', NULL"],
    ]) {
      const { rows } = await c.query(
        `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${name}('bob', '{}', '{}', 10, 30, gen_random_uuid()${extra})`,
      );
      const plan = JSON.stringify(rows[0]['QUERY PLAN']);
      assert.doesNotMatch(plan, /Hash Join|Bitmap Heap Scan|Seq Scan/, `${name}: ${plan}`);
      assert.match(plan, /"Index Name":"message_pkey"/, name);
    }
  } finally {
    c.release();
  }
});
