// Two instances on one database, both running their background jobs: every expired
// lease is handled exactly once (returned or dead), the counters of both add up to
// what happened, pulls never hand one message to both, and both report the same gauges.
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { wire, type Core } from '../../src/app/server.js';
import { addAgent } from '../../src/db/agents.js';
import { refreshQueueGauges } from '../../src/jobs/queue-gauges.js';
import { createHousekeeping } from '../../src/mailbox/housekeeping.js';
import { createTestDatabase } from '../helpers/db.js';
import { sample } from './scrape.js';

const N = 600;

const METRICS_TOKEN = 'metrics-token-for-tests';
const scrape = async (core: Core) =>
  (await core.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } }))
    .body;
const total = async (cores: Core[], name: string, labels: Record<string, string> = {}) =>
  (await Promise.all(cores.map(async (c) => sample(await scrape(c), name, labels) ?? 0))).reduce((a, b) => a + b, 0);

test('two instances sweep one database: each expired lease handled once, counters add up', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_DOMAINS: 'agents.test',
    ADMP_RECLAIM_INTERVAL_MS: '50',
    ADMP_MAX_ATTEMPTS: '3',
    ADMP_LOG_LEVEL: 'silent',
    ADMP_METRICS_REFRESH_MS: '1000',
    ADMP_METRICS_TOKEN: METRICS_TOKEN,
  });
  const a = await addAgent(db.pool, 'alice', 'agents.test');
  const b = await addAgent(db.pool, 'bob', 'agents.test');
  const cores = [await wire(config, db, createLogger('silent')), await wire(config, db, createLogger('silent'))];
  t.after(async () => {
    await Promise.all(cores.map((c) => c.stop()));
  });

  // N messages, leased with leases that expired a minute ago: a third with attempts
  // spent (→ dead max_attempts), a third past their TTL (→ dead ttl_expired), a third returned.
  const send = (n: number) =>
    cores[n % 2]!.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${a.token}` },
      payload: { to: 'bob@agents.test', type: 'note', body: { n } },
    });
  for (let i = 0; i < N; i += 50)
    for (const r of await Promise.all(Array.from({ length: 50 }, (_, j) => send(i + j))))
      assert.equal(r.statusCode, 201, r.body);
  // Times and the lease id come in as values: Citus (npm run test:citus) refuses volatile
  // functions in an UPDATE, and now() inside CASE.
  await db.pool.query(
    `UPDATE message SET status = 'leased', lease_id = $1, lease_until = $2,
      attempts = CASE WHEN (body->>'n')::int % 3 = 0 THEN 3 ELSE 1 END,
      expires_at = CASE WHEN (body->>'n')::int % 3 = 1 THEN $3 ELSE expires_at END`,
    [randomUUID(), new Date(Date.now() - 60_000), new Date(Date.now() - 1000)],
  );

  const deadline = Date.now() + 20_000;
  while ((await db.pool.query("SELECT 1 FROM message WHERE status = 'leased' LIMIT 1")).rowCount! > 0) {
    assert.ok(Date.now() < deadline, 'the sweepers did not drain the expired leases');
    await new Promise((r) => setTimeout(r, 50));
  }

  // Exactly one sweep event per message, whatever instance took it.
  const { rows } = await db.pool.query<{ n: number; status: string; events: number; reason: string | null }>(
    `SELECT (body->>'n')::int AS n, status::text,
            (SELECT count(*)::int FROM jsonb_array_elements(delivery_log) e WHERE e->>'event' IN ('lease_expired', 'dead')) AS events,
            (SELECT e->>'reason' FROM jsonb_array_elements(delivery_log) e WHERE e->>'event' = 'dead') AS reason
       FROM message`,
  );
  assert.equal(rows.length, N);
  for (const r of rows) {
    assert.equal(r.events, 1, `message ${r.n} was swept ${r.events} times`);
    const want =
      r.n % 3 === 0 ? ['dead', 'max_attempts'] : r.n % 3 === 1 ? ['dead', 'ttl_expired'] : ['delivered', null];
    assert.deepEqual([r.status, r.reason], want, `message ${r.n}`);
  }
  assert.equal(await total(cores, 'admp_lease_expired_total'), N / 3);
  assert.equal(await total(cores, 'admp_dead_total', { reason: 'max_attempts' }), N / 3);
  assert.equal(await total(cores, 'admp_dead_total', { reason: 'ttl_expired' }), N / 3);

  // Both instances pull bob's returned messages at once: each is leased to one of them only.
  const pulls = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      cores[i % 2]!.app.inject({
        method: 'POST',
        url: '/v1/inbox/pull',
        headers: { authorization: `Bearer ${b.token}` },
        payload: { max: 50 },
      }),
    ),
  );
  const ids = pulls.flatMap((p) => (p.json().messages as { id: string }[]).map((m) => m.id));
  assert.equal(ids.length, N / 3, 'every returned message is pulled');
  assert.equal(new Set(ids).size, ids.length, 'no message is leased twice');

  // The queue gauges are read-only queries: both instances report the same values
  // (refreshed now rather than after waiting for their interval).
  const housekeeping = createHousekeeping(db.pool, config);
  await Promise.all(cores.map((c) => refreshQueueGauges(housekeeping, c.metrics)));
  const gauges = await Promise.all(
    cores.map(async (c) => sample(await scrape(c), 'admp_queue_messages', { status: 'leased' })),
  );
  assert.deepEqual(gauges, [N / 3, N / 3]);
});
