// Push delivery by signed webhooks against a real receiver that verifies with the
// `standardwebhooks` package: signatures (v1 HMAC, v1a Ed25519), acks on 2xx, retries
// with backoff, 410 disabling the endpoint, timeouts, redirects never followed, the SSRF
// guard, the type filter, and two instances delivering each message exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LookupFunction } from 'node:net';
import { startTestApi, type TestAgent, type TestApi } from '../helpers/api.js';
import { wire } from '../../src/app/server.js';
import { createLogger } from '../../src/log.js';
import { answer, startReceiver, type Receiver } from './receiver.js';

const FAST = {
  ADMP_FETCH_ALLOW: '127.0.0.1',
  ADMP_WEBHOOK_BACKOFF_MS: '50',
  ADMP_WEBHOOK_TIMEOUT_MS: '400',
  ADMP_MAX_ATTEMPTS: '3',
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function call(api: TestApi, agent: TestAgent, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) {
  const res = await api.core.app.inject({ method, url, headers: agent.auth, ...(payload ? { payload } : {}) });
  return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as Json) : undefined };
}

async function send(api: TestApi, from: TestAgent, to: TestAgent, type = 'task.request', body: unknown = { n: 1 }) {
  const r = await call(api, from, 'POST', '/v1/messages', { to: to.address, type, body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as string;
}

/** Waits until the message reaches `status` (as its recipient sees it); returns its view. */
async function until(api: TestApi, agent: TestAgent, id: string, status: string, ms = 10_000): Promise<Json> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await call(api, agent, 'GET', `/v1/messages/${id}`);
    if (r.body.status === status) return r.body;
    if (Date.now() > end)
      assert.fail(`message ${id} is ${r.body.status}, not ${status}: ${JSON.stringify(r.body.delivery_log)}`);
    await sleep(25);
  }
}

/** Waits until the agent's first endpoint is disabled; returns it. */
async function firstDisabled(api: TestApi, agent: TestAgent): Promise<Json> {
  const end = Date.now() + 10_000;
  for (;;) {
    const [ep] = (await call(api, agent, 'GET', '/v1/webhooks')).body.endpoints;
    if (ep.disabled_at || Date.now() > end) return ep;
    await sleep(25);
  }
}

async function setup(
  t: { after(f: () => Promise<void>): void },
  env: Record<string, string> = FAST,
  lookup?: LookupFunction,
) {
  const api = await startTestApi(env, lookup ? { pushDeps: { lookup } } : {});
  const receiver = await startReceiver();
  t.after(async () => {
    await api.close();
    await receiver.close();
  });
  return { api, receiver, alice: await api.agent('alice'), bob: await api.agent('bob') };
}

async function register(api: TestApi, bob: TestAgent, receiver: Receiver, path: string, extra: object = {}) {
  const r = await call(api, bob, 'POST', '/v1/webhooks', {
    url: receiver.url + path,
    ...(receiver.secret ? { secret: receiver.secret } : {}),
    ...extra,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  if (!receiver.secret) receiver.secret = r.body.secret;
  return r.body as Json;
}

test('a message is POSTed signed (v1 and v1a), verified by standardwebhooks, and acked on 2xx', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  const ep = await register(api, bob, receiver, '/hook', { ed25519: true });
  assert.match(ep.secret, /^whsec_/);
  assert.match(ep.public_key, /^whpk_/);
  const id = await send(api, alice, bob, 'task.request', { numbers: [1, 2] });
  const done = await until(api, bob, id, 'acked');
  assert.deepEqual(receiver.rejected, []);
  assert.equal(receiver.received.length, 1);
  const got = receiver.received[0]!;
  assert.equal(got.id, id, 'webhook-id is the message id');
  assert.equal(got.payload.type, 'message.received');
  assert.equal(got.payload.data.id, id);
  assert.equal(got.payload.data.from, alice.address);
  assert.equal(got.payload.data.to, bob.address);
  assert.deepEqual(got.payload.data.body, { numbers: [1, 2] });
  assert.equal(got.payload.data.lease_id, undefined);
  // v1a: Ed25519 over the same content, checked with the public key the registration returned.
  const v1a = got.headers['webhook-signature']!.split(' ')
    .find((s) => s.startsWith('v1a,'))!
    .slice(4);
  const raw = Buffer.from(ep.public_key.slice('whpk_'.length), 'base64');
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const content = `${got.id}.${got.headers['webhook-timestamp']}.${got.body}`;
  assert.ok(verify(null, Buffer.from(content), key, Buffer.from(v1a, 'base64')));
  assert.ok(!verify(null, Buffer.from(content + ' '), key, Buffer.from(v1a, 'base64')));
  const acked = done.delivery_log.find((e: Json) => e.event === 'acked');
  assert.equal(acked.webhook, ep.id);
  const list = await call(api, bob, 'GET', '/v1/webhooks');
  assert.equal(list.body.endpoints.length, 1);
  assert.equal(list.body.endpoints[0].secret, undefined, 'the secret is shown only at registration');
  const metrics = await api.core.metrics.registry.getSingleMetricAsString('admp_webhook_attempts_total');
  assert.match(metrics, /outcome="delivered"} 1/);
});

test('a failing endpoint is retried with backoff until it answers 2xx; every attempt is in delivery_log', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  receiver.script('/flaky', (_req, res, n) => void res.writeHead(n <= 2 ? 503 : 200).end());
  await register(api, bob, receiver, '/flaky');
  const id = await send(api, alice, bob);
  const done = await until(api, bob, id, 'acked');
  assert.equal(receiver.received.length, 3);
  const attempts = done.delivery_log.filter((e: Json) => e.event === 'webhook');
  assert.deepEqual(
    attempts.map((e: Json) => e.status),
    [503, 503],
  );
  assert.ok(attempts.every((e: Json) => typeof e.retry_at === 'string'));
  assert.equal(done.attempts, 3);
});

test('410 Gone disables the endpoint and returns the message to the inbox for pulls', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  receiver.script('/gone', answer(410));
  const ep = await register(api, bob, receiver, '/gone');
  const id = await send(api, alice, bob);
  const disabled = await firstDisabled(api, bob);
  assert.match(disabled.disabled_reason, /410/);
  await sleep(300);
  assert.equal(receiver.received.length, 1, 'no delivery after the 410');
  const pulled = await call(api, bob, 'POST', '/v1/inbox/pull', { max: 5 });
  assert.deepEqual(
    pulled.body.messages.map((m: Json) => m.id),
    [id],
  );
  // Enabled again, it takes the next message.
  assert.equal((await call(api, bob, 'POST', `/v1/webhooks/${ep.id}/enable`)).body.disabled_at, null);
  receiver.script('/gone', answer(200));
  const second = await send(api, alice, bob);
  await until(api, bob, second, 'acked');
});

test('a timeout is a failed attempt; after ADMP_MAX_ATTEMPTS the message is dead with the reason', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  receiver.script('/slow', (_req, res) => void setTimeout(() => res.writeHead(200).end(), 1500).unref());
  await register(api, bob, receiver, '/slow');
  const id = await send(api, alice, bob);
  const dead = await until(api, bob, id, 'dead', 15_000);
  const attempts = dead.delivery_log.filter((e: Json) => e.event === 'webhook');
  assert.equal(attempts.length, 3);
  assert.ok(
    attempts.every((e: Json) => /no answer within 400 ms/.test(e.error)),
    JSON.stringify(attempts),
  );
  assert.equal(dead.delivery_log.at(-1).reason, 'max_attempts');
});

test('a redirect is not followed: it counts as a failed attempt', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  receiver.script('/moved', answer(302, { location: `${receiver.url}/target` }));
  await register(api, bob, receiver, '/moved');
  const id = await send(api, alice, bob);
  const dead = await until(api, bob, id, 'dead', 10_000);
  assert.equal(receiver.received.filter((r) => r.path === '/target').length, 0);
  const attempts = dead.delivery_log.filter((e: Json) => e.event === 'webhook');
  assert.ok(attempts.length >= 1);
  assert.ok(attempts.every((e: Json) => e.status === 302 && /redirect not followed/.test(e.error)));
});

test('only messages of the endpoint types are pushed; the others stay for pulls', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  await register(api, bob, receiver, '/typed', { types: ['task.request'] });
  const other = await send(api, alice, bob, 'note');
  const task = await send(api, alice, bob, 'task.request');
  await until(api, bob, task, 'acked');
  await sleep(200);
  assert.deepEqual(
    receiver.received.map((r) => r.id),
    [task],
  );
  assert.equal((await call(api, bob, 'GET', `/v1/messages/${other}`)).body.status, 'delivered');
});

test('private addresses are refused: at registration for a literal, at delivery for a name resolving to one', async (t) => {
  // No allow-list: loopback is refused. The name is resolved by a test resolver to 127.0.0.1.
  const lookup: LookupFunction = (_host, _opts, cb) =>
    (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
      { address: '127.0.0.1', family: 4 },
    ]);
  const { api, receiver, alice, bob } = await setup(t, { ...FAST, ADMP_FETCH_ALLOW: '' }, lookup);
  for (const url of [`${receiver.url}/x`, 'http://[::1]/x', 'http://10.1.2.3/x', 'http://169.254.169.254/latest']) {
    const r = await call(api, bob, 'POST', '/v1/webhooks', { url });
    assert.equal(r.status, 400, url);
    assert.equal(r.body.error.code, 'bad_request');
    assert.match(r.body.error.message, /refused/);
  }
  const bad = await call(api, bob, 'POST', '/v1/webhooks', { url: 'ftp://example.com/x' });
  assert.equal(bad.status, 400);
  const ep = await call(api, bob, 'POST', '/v1/webhooks', { url: `http://receiver.example:${receiver.port}/x` });
  assert.equal(ep.status, 201);
  const id = await send(api, alice, bob);
  const disabled = await firstDisabled(api, bob);
  assert.match(disabled.disabled_reason, /refused to connect/);
  assert.equal(receiver.received.length, 0, 'no request reached the loopback receiver');
  assert.equal((await call(api, bob, 'GET', `/v1/messages/${id}`)).body.status, 'delivered');
});

test('two instances on one database deliver each message exactly once, each within its concurrency', async (t) => {
  const { api, receiver, alice, bob } = await setup(t, { ...FAST, ADMP_WEBHOOK_CONCURRENCY: '4' });
  const second = await wire(api.config, api.db, createLogger('silent'));
  try {
    await deliverTwice(api, receiver, alice, bob);
    // Both took part (each counts its own attempts).
    for (const core of [api.core, second]) {
      const m = await core.metrics.registry.getSingleMetricAsString('admp_webhook_attempts_total');
      assert.match(m, /outcome="delivered"} [1-9]/);
    }
  } finally {
    await second.stop();
  }
});

async function deliverTwice(api: TestApi, receiver: Receiver, alice: TestAgent, bob: TestAgent) {
  let inFlight = 0;
  let most = 0;
  receiver.script('/both', (_req, res) => {
    most = Math.max(most, ++inFlight);
    setTimeout(() => {
      inFlight--;
      res.writeHead(200).end();
    }, 30);
  });
  await register(api, bob, receiver, '/both');
  // Both instances read the endpoint list within a poll (a second).
  await sleep(1500);
  // More at once than one instance keeps in flight (4), so both take part.
  const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => send(api, alice, bob, 'task.request', { i })));
  for (const id of ids) await until(api, bob, id, 'acked');
  assert.deepEqual(receiver.rejected, []);
  assert.deepEqual(receiver.received.map((r) => r.id).sort(), [...ids].sort(), 'each message once');
  // Two instances, each at most ADMP_WEBHOOK_CONCURRENCY (4) at a time for the endpoint.
  assert.ok(most <= 8, `at most 8 requests in flight, saw ${most}`);
}

test('database connections killed while pushing: every message is still delivered and acked', async (t) => {
  const { api, receiver, alice, bob } = await setup(t);
  receiver.script('/faults', (_req, res) => void setTimeout(() => res.writeHead(204).end(), 40));
  await register(api, bob, receiver, '/faults');
  await sleep(1200);
  const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => send(api, alice, bob, 'task.request', { i })));
  // Every other backend of this database, the push worker's and the LISTEN connection's
  // among them, is terminated three times while the deliveries run.
  for (let k = 0; k < 3; k++) {
    await sleep(80);
    await api.db.pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
  }
  for (const id of ids) await until(api, bob, id, 'acked', 60_000);
  assert.deepEqual(receiver.rejected, []);
  // At least once: a message whose ack was lost with its connection may be pushed again.
  assert.deepEqual([...new Set(receiver.received.map((r) => r.id))].sort(), [...ids].sort());
});
