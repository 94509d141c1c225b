// The TTL sweep waits for an outbound message the outbound worker is submitting: killed
// meanwhile, a message the relay then accepted would stay `dead` (an outcome moves only a
// `queued` one). A claim whose worker died runs out, and the message goes dead then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { enqueueRows } from '../../src/db/enqueue.js';
import { claimDue, recordOutcome } from '../../src/db/outbound.js';
import { sweepExpired } from '../../src/db/sweeps.js';

test('an outbound message in the middle of its submission outlives its TTL until the outcome; an abandoned claim does not', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const rows = await enqueueRows(
    db.pool,
    ['a', 'b'].map((k) => ({
      to_agent_id: 'x@agents.partner.test',
      channel: 'smtp' as const,
      from_agent: 'alice@agents.test',
      type: 't',
      body: { k },
      status: 'queued' as const,
      ttl_sec: 600,
      idempotency_key: k,
    })),
  );
  const claimed = await claimDue(db.pool, 10, 300);
  assert.equal(claimed.length, 2);
  const [a, b] = rows.map((r) => claimed.find((c) => c.id === r.id)!);
  // Both TTLs run out during the attempts (times as values: Citus refuses stable functions over columns).
  const past = new Date(Date.now() - 1000);
  await db.pool.query('UPDATE message SET expires_at = $2 WHERE to_agent_id = $1', ['x@agents.partner.test', past]);
  // b's worker died: its claim ran out.
  await db.pool.query('UPDATE message SET next_attempt_at = $2 WHERE to_agent_id = $1 AND id = $3', [
    'x@agents.partner.test',
    past,
    b!.id,
  ]);
  assert.deepEqual(await sweepExpired(db.pool, 5), { returned: 0, dead: [{ reason: 'ttl_expired', n: 1 }] });
  assert.ok(await recordOutcome(db.pool, a!, { status: 'sent', log: { event: 'sent' } }));
  const status = async (id: string) =>
    (await db.pool.query<{ s: string }>('SELECT status::text AS s FROM message WHERE id = $1', [id])).rows[0]!.s;
  assert.equal(await status(a!.id), 'sent', 'the relay took it: sent, not dead');
  assert.equal(await status(b!.id), 'dead');
});
