// Many idle long polls at once (docs/scaling.md, "What an idle long poll costs"): their
// token lookups and first looks queue behind gates holding a quarter and a half of the
// pool, not in the pool's queue, so sends keep working while thousands arrive; each parks without a connection and is woken by a
// message to its own agent; a parked poll whose bearer token is revoked gets nothing
// once the token cache (ADMP_AUTH_CACHE_SEC) has let the revocation through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestAgent, type TestApi } from '../helpers/api.js';
import { rotateCredentials } from '../../src/db/agents.js';

// On the Citus cluster (test:citus) 500: each agent row is written to all three nodes,
// and creating 2,000 took most of a minute there; the gate and the wake-ups are the same.
const POLLS = process.env.ADMP_TEST_CITUS_WORKERS ? 500 : 2000;

const pullRequest = (api: TestApi, who: TestAgent, payload: Record<string, unknown>) =>
  api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: who.auth, payload });
const send = (api: TestApi, from: TestAgent, to: TestAgent, body: unknown) =>
  api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: from.auth,
    payload: { to: to.address, type: 'note', body },
  });

/** Claim statements run so far (every look of every pull observes admp_pull_seconds once). */
async function looks(api: TestApi): Promise<number> {
  const m = await api.core.metrics.pullSeconds.get();
  return m.values.find((v) => v.metricName === 'admp_pull_seconds_count')?.value ?? 0;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 90_000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok());) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(`${POLLS} concurrent long polls, gates sized for ADMP_PG_POOL_MAX=4: few statements queue in the pool, sends succeed, each poll is woken by its own message`, async (t) => {
  const api = await startTestApi({ ADMP_PG_POOL_MAX: '4' });
  t.after(() => api.close());
  const [sender, sink] = [await api.agent('sender'), await api.agent('sink')];
  const agents: TestAgent[] = [];
  for (let i = 0; i < POLLS; i += 50)
    agents.push(
      ...(await Promise.all(Array.from({ length: Math.min(50, POLLS - i) }, (_, j) => api.agent(`poll-${i + j}`)))),
    );
  const before = await looks(api);

  // How many statements wait in the pool's queue while the polls arrive: without the
  // gates every poll's token lookup and claim would be there, ahead of any send.
  let mostQueued = 0;
  const sampler = setInterval(() => (mostQueued = Math.max(mostQueued, api.db.pool.waitingCount)), 2);
  const polls = agents.map((a) => pullRequest(api, a, { max: 1, wait: 20 }));
  // While thousands of polls authenticate and take their first look, sends get their connections.
  const sends = await Promise.all(Array.from({ length: 50 }, (_, i) => send(api, sender, sink, { during: i })));
  for (const r of sends) assert.equal(r.statusCode, 201, r.body);

  await until('every poll to look once', async () => (await looks(api)) - before >= POLLS);
  clearInterval(sampler);
  // At most 1 token lookup and 2 claims of the polls at a time, plus the sends' batches.
  assert.ok(mostQueued <= 20, `${mostQueued} statements queued in the pool at once`);
  const parkedAt = await looks(api);
  for (let i = 0; i < POLLS; i += 100) {
    const batch = await Promise.all(agents.slice(i, i + 100).map((a, j) => send(api, sender, a, { i: i + j })));
    for (const r of batch) assert.equal(r.statusCode, 201, r.body);
  }
  const answers = await Promise.all(polls);
  answers.forEach((r, i) => {
    assert.equal(r.statusCode, 200, r.body);
    const messages = r.json().messages as { body: { i: number } }[];
    assert.deepEqual(
      messages.map((m) => m.body),
      [{ i }],
      `poll ${i} got its own message`,
    );
  });
  // Parked polls looked again only when woken: about one more look each, not a busy loop.
  assert.ok((await looks(api)) - parkedAt <= 2 * POLLS, 'parked polls do not poll the database');
  const { rows } = await api.db.pool.query(
    "SELECT count(*)::int AS n FROM message WHERE to_agent_id LIKE 'poll-%' AND status = 'leased'",
  );
  assert.equal(rows[0].n, POLLS);
});

test('a revoked bearer token stops working within ADMP_AUTH_CACHE_SEC, a parked long poll included', async (t) => {
  const api = await startTestApi({ ADMP_AUTH_CACHE_SEC: '1' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  // Cached now: the revocation can take up to the cache time to reach this process.
  assert.equal((await api.core.app.inject({ url: '/v1/inbox', headers: b.auth })).statusCode, 200);
  const parked = pullRequest(api, b, { max: 1, wait: 20 });
  await until('the poll to park', async () => (await looks(api)) >= 1);

  await rotateCredentials(api.db.pool, 'bob', ['token']);
  await new Promise((r) => setTimeout(r, 1100)); // the cache time (1 s) has passed
  assert.equal((await api.core.app.inject({ url: '/v1/inbox', headers: b.auth })).statusCode, 401);

  // Mail wakes the parked poll: it checks the token again and claims nothing.
  assert.equal((await send(api, a, b, { after: 'revocation' })).statusCode, 201);
  const r = await parked;
  assert.equal(r.statusCode, 401, r.body);
  const { rows } = await api.db.pool.query("SELECT status FROM message WHERE to_agent_id = 'bob'");
  assert.deepEqual(
    rows.map((x) => x.status),
    ['delivered'],
    'the message waits for a valid credential',
  );
});

test('a message released with a delay wakes the poll parked on its inbox when it becomes visible', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  assert.equal((await send(api, a, b, { n: 1 })).statusCode, 201);
  const first = await pullRequest(api, b, { max: 1 });
  const m = first.json().messages[0];
  const parked = pullRequest(api, b, { max: 1, wait: 20 });
  await until('the poll to park', async () => (await looks(api)) >= 2);

  const started = Date.now();
  const nacked = await api.core.app.inject({
    method: 'POST',
    url: `/v1/messages/${m.id}/nack`,
    headers: b.auth,
    payload: { lease_id: m.lease_id, delay_sec: 1 },
  });
  assert.equal(nacked.statusCode, 200, nacked.body);
  const r = await parked;
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(
    r.json().messages.map((x: { id: string }) => x.id),
    [m.id],
  );
  // Woken when the delay ends, not at the end of its 20 s wait.
  const waited = Date.now() - started;
  assert.ok(waited >= 1000 && waited < 10_000, `answered after ${waited} ms`);
});
