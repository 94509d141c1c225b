// Per-agent API request limits: every route counts (sends, pulls, long polls, status),
// over the limit is 429 with Retry-After and a precise code, other agents are not
// affected, and the agent may call again once the window has passed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi } from '../helpers/api.js';

test('an agent over ADMP_API_RATE_LIMIT gets 429 with Retry-After on every route, and recovers after the window', async (t) => {
  const api = await startTestApi({ ADMP_API_RATE_LIMIT: '4', ADMP_API_RATE_WINDOW_SEC: '2' });
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const app = api.core.app;
  const send = () =>
    app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: alice.auth,
      payload: { to: bob.address, type: 'task.request', body: {} },
    });
  const pull = (wait = 0) =>
    app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: alice.auth, payload: { max: 1, wait } });
  const started = Date.now();
  assert.equal((await send()).statusCode, 201);
  assert.equal((await pull()).statusCode, 200);
  assert.equal((await pull(1)).statusCode, 200, 'a long poll counts once');
  assert.equal((await app.inject({ url: '/v1/inbox', headers: alice.auth })).statusCode, 200);
  for (const r of [await send(), await pull(), await app.inject({ url: '/v1/inbox', headers: alice.auth })]) {
    assert.equal(r.statusCode, 429);
    assert.equal(r.json().error.code, 'rate_limited');
    assert.deepEqual(
      { rule: r.json().error.details.rule, key: r.json().error.details.key, window: r.json().error.details.window },
      { rule: 'api', key: 'alice', window: '2s' },
    );
    const retry = Number(r.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 2, `Retry-After ${r.headers['retry-after']}`);
  }
  assert.equal((await app.inject({ url: '/v1/inbox', headers: bob.auth })).statusCode, 200, 'bob has his own count');
  const bad = await app.inject({ url: '/v1/inbox', headers: { authorization: 'Bearer admp_nope' } });
  assert.equal(bad.statusCode, 401, 'unauthenticated calls are refused before counting');
  assert.match(
    await api.core.metrics.registry.metrics(),
    /admp_rate_limited_total\{scope="api",rule="api",window="2s"\} 3/,
  );
  // The window opened at alice's first counted call; refused calls do not extend it.
  let status = 429;
  while (status === 429 && Date.now() - started < 10_000) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await send()).statusCode;
  }
  assert.equal(status, 201, 'a new window');
  assert.ok(Date.now() - started >= 2000, 'not before the window ended');
});

test('ADMP_API_RATE_LIMIT=0 turns the limit off', async (t) => {
  const api = await startTestApi({ ADMP_API_RATE_LIMIT: '0' });
  t.after(() => api.close());
  const alice = await api.agent('alice');
  for (let i = 0; i < 20; i++)
    assert.equal((await api.core.app.inject({ url: '/v1/inbox', headers: alice.auth })).statusCode, 200);
});
