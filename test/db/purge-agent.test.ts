// Purging an agent (the doctor's throw-away probe) removes every message to or from it with
// its dedupe key and search entry: retention removes keys only with their messages, so a
// key left behind would stay for good, and answer a resend with a message that is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { enqueueRows } from '../../src/db/enqueue.js';
import { purgeAgent } from '../../src/db/agents.js';
import type { NewMessage } from '../../src/db/message-row.js';

const item = (to: string, from: string, key: string): NewMessage => ({
  to_agent_id: to,
  channel: 'http',
  from_agent: from,
  type: 't',
  body: { key },
  status: 'delivered',
  ttl_sec: 600,
  idempotency_key: key,
});

test('purging an agent removes its messages with their dedupe keys and search entries, and nobody else’s', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await db.pool.query("INSERT INTO agent (id, domain) VALUES ('probe', 'agents.test'), ('bob', 'agents.test')");
  await enqueueRows(db.pool, [
    item('probe', 'probe@agents.test', 'to-probe'),
    item('bob', 'probe@agents.test', 'from-probe'),
    item('bob', 'alice@agents.test', 'alice-to-bob'),
  ]);
  const count = async (table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
  assert.deepEqual([await count('message'), await count('message_dedupe'), await count('message_search')], [3, 3, 3]);
  await purgeAgent(db.pool, 'probe', 'probe@agents.test');
  assert.deepEqual([await count('message'), await count('message_dedupe'), await count('message_search')], [1, 1, 1]);
  assert.deepEqual((await db.pool.query('SELECT id FROM agent')).rows, [{ id: 'bob' }]);
  // The keys are free again: the same sends are new messages, not answers naming removed ones.
  const again = await enqueueRows(db.pool, [
    item('probe', 'probe@agents.test', 'to-probe'),
    item('bob', 'probe@agents.test', 'from-probe'),
    item('bob', 'alice@agents.test', 'alice-to-bob'),
  ]);
  assert.deepEqual(
    again.map((r) => r.duplicate),
    [false, false, true],
  );
});
