// The SDK against a real server: every method, the three ways to authenticate, and
// send's retries (rate limit with Retry-After, a lost answer, the database down, a
// server restart) storing each message once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { AdmpApiError, AdmpClient, type Credentials } from '../../src/sdk/index.js';
import { backoffMs, retryAfterMs } from '../../src/sdk/transport.js';
import { createAgentKey, seedFromPem } from '../../src/keys/private-key.js';
import { insertLocalKey } from '../../src/db/keys.js';
import { startProxy, startSdkServer } from './server.js';

const client = (
  baseUrl: string,
  credentials: Credentials,
  o: Partial<ConstructorParameters<typeof AdmpClient>[0]> = {},
) => new AdmpClient({ baseUrl, credentials, retry: { baseDelayMs: 50, maxDelayMs: 2000 }, ...o });

test('every method of the client against a real server', async (t) => {
  const s = await startSdkServer({ ADMP_MAX_ATTEMPTS: '1' });
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const alice = client(s.url, { token: a.token });
  const bob = client(s.url, { token: b.token });

  const sent = await alice.send({ to: b.address, type: 'task.request', body: { n: 1 }, correlation_id: 'c1' });
  assert.equal(sent.status, 'delivered');
  const again = await alice.send({ to: b.address, type: 'task.request', body: { n: 1 } }, { idempotencyKey: 'k1' });
  const replay = await alice.send({ to: b.address, type: 'task.request', body: { n: 1 } }, { idempotencyKey: 'k1' });
  assert.equal(replay.id, again.id);
  assert.equal(replay.duplicate, true);
  assert.equal((await bob.inbox()).depth.delivered, 2);

  const first = await bob.pull({ max: 1, visibility_timeout: 30 });
  const m = first.messages[0]!;
  assert.equal(m.id, sent.id);
  assert.equal(m.from, a.address);
  assert.deepEqual(m.body, { n: 1 });
  const extended = await bob.extend(m.id, m.lease_id, 60);
  assert.equal(extended.status, 'leased');
  assert.ok(Date.parse(extended.lease_until!) > Date.now() + 50_000);
  // The next pull carries the ack of the previous batch.
  const second = await bob.pull({ max: 1, ack: [{ id: m.id, lease_id: m.lease_id }] });
  assert.deepEqual(second.acked, [{ id: m.id, outcome: 'acked' }]);
  const m2 = second.messages[0]!;
  assert.equal(m2.id, again.id);

  const conflict = await bob.ack(m.id, m.lease_id).catch((e: unknown) => e);
  assert.ok(conflict instanceof AdmpApiError);
  assert.equal(conflict.code, 'lease_conflict');
  assert.equal(conflict.status, 409);

  const reply = await bob.reply(m.id, { type: 'task.result', body: { ok: true } });
  assert.equal(reply.status, 'delivered');
  const [r] = (await alice.pull({ max: 5 })).messages;
  assert.equal(r!.in_reply_to, m.id);
  assert.equal(r!.correlation_id, 'c1');
  assert.deepEqual(await alice.ackMany([{ id: r!.id, lease_id: r!.lease_id }]), [{ id: r!.id, outcome: 'acked' }]);
  assert.deepEqual(await alice.ack(r!.id, r!.lease_id).catch((e: AdmpApiError) => e.code), 'lease_conflict');

  const st = await alice.status(m.id);
  assert.equal(st.status, 'acked');
  assert.equal(st.reply, reply.id);
  assert.deepEqual(
    st.delivery_log.map((e) => e.event),
    ['delivered', 'extended', 'acked', 'replied'],
  );

  // With one attempt allowed, a release makes m2 a dead letter; redrive brings it back.
  const released = await bob.release(m2.id, m2.lease_id, 0);
  assert.equal(released.status, 'dead');
  const dead = await bob.deadLetters({ limit: 10 });
  assert.deepEqual(
    dead.map((d) => d.id),
    [m2.id],
  );
  assert.deepEqual(dead[0]!.body, { n: 1 });
  assert.deepEqual(await bob.redrive([m2.id]), { redriven: [m2.id] });
  assert.deepEqual(await bob.redrive('all'), { redriven: [] });
  assert.equal((await bob.pull({ max: 1 })).messages[0]!.id, m2.id);

  const unknown = await alice.send({ to: 'nobody@agents.test', type: 't', body: 1 }).catch((e: unknown) => e);
  assert.ok(unknown instanceof AdmpApiError);
  assert.equal(unknown.code, 'unknown_recipient');
  assert.equal(unknown.status, 404);
  const stranger = await client(s.url, { token: 'admp_wrong' })
    .inbox()
    .catch((e: AdmpApiError) => e.code);
  assert.equal(stranger, 'unauthorized');
});

test('EdDSA JWTs minted from a PEM or a seed and renewed before they expire; HMAC-signed requests', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const key = await createAgentKey();
  await insertLocalKey(s.api.db.pool, { agent: a.address, kid: key.kid, publicKey: key.publicKey });

  const authorizations: string[] = [];
  const recording: typeof fetch = (input, init) => {
    authorizations.push(new Headers(init?.headers).get('authorization') ?? '');
    return fetch(input, init);
  };
  const byPem = client(
    s.url,
    { agent: a.address, kid: key.kid, privateKey: key.privateKeyPem, lifetimeSec: 2 },
    { fetch: recording },
  );
  await byPem.send({ to: b.address, type: 't', body: 1 });
  await byPem.send({ to: b.address, type: 't', body: 2 });
  assert.equal(authorizations[0], authorizations[1], 'a valid token is reused');
  await new Promise((r) => setTimeout(r, 1800)); // past 80 % of the 2 s lifetime
  await byPem.send({ to: b.address, type: 't', body: 3 });
  assert.notEqual(authorizations[2], authorizations[1], 'a token near its expiry is renewed');

  const bySeed = client(s.url, { agent: a.address, kid: key.kid, privateKey: seedFromPem(key.privateKeyPem) });
  assert.equal((await bySeed.send({ to: b.address, type: 't', body: 4 })).status, 'delivered');

  const byHmac = client(s.url, { agentId: b.id, hmacSecret: b.hmac_secret });
  const pulled = await byHmac.pull({ max: 10 });
  assert.deepEqual(
    pulled.messages.map((m) => m.body),
    [1, 2, 3, 4],
  );
  assert.equal((await byHmac.deadLetters({ limit: 5 })).length, 0, 'a query string is signed too');
  const forged = client(s.url, { agentId: b.id, hmacSecret: a.hmac_secret });
  assert.equal(await forged.inbox().catch((e: AdmpApiError) => e.code), 'unauthorized');
});

test('send retries 429 after Retry-After and a lost answer with the same idempotency key: stored once', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  let n = 0;
  const proxy = await startProxy(s.url, (_req, res) => {
    n++;
    if (n === 1) {
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'quota_exceeded', message: 'slow down' } }));
      return 'answered';
    }
    return n === 2 ? 'drop-answer' : 'forward';
  });
  t.after(() => proxy.close());
  const started = Date.now();
  const sent = await client(proxy.url, { token: a.token }).send({ to: b.address, type: 't', body: 'once' });
  assert.ok(Date.now() - started >= 950, 'the Retry-After of 1 s was honoured');
  assert.equal(sent.duplicate, true, 'the third attempt found the message the lost answer had stored');
  assert.equal(proxy.seen.length, 3);
  const keys = new Set(proxy.seen.map((r) => r.headers['idempotency-key']));
  assert.equal(keys.size, 1, 'every attempt carries the same idempotency key');
  assert.equal((await s.api.db.pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n, 1);
});

test('send rides out a database outage (503) and a server restart; errors that are not temporary are not retried', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const alice = client(s.url, { token: a.token }, { retry: { retries: 30, baseDelayMs: 100, maxDelayMs: 400 } });

  await s.api.db.block();
  const duringOutage = alice.send({ to: b.address, type: 't', body: 'outage' });
  await new Promise((r) => setTimeout(r, 700));
  await s.api.db.unblock();
  assert.equal((await duringOutage).status, 'delivered');

  await s.stop();
  const duringRestart = alice.send({ to: b.address, type: 't', body: 'restart' });
  await new Promise((r) => setTimeout(r, 700));
  await s.start();
  assert.equal((await duringRestart).status, 'delivered');
  const bodies = (await s.api.db.pool.query('SELECT body FROM message ORDER BY created_at')).rows.map((r) => r.body);
  assert.deepEqual(bodies, ['outage', 'restart']);

  let calls = 0;
  const counting: typeof fetch = (i, init) => (calls++, fetch(i, init));
  const bad = client(s.url, { token: a.token }, { fetch: counting });
  await assert.rejects(bad.send({ to: 'nobody@agents.test', type: 't', body: 1 }), { code: 'unknown_recipient' });
  assert.equal(calls, 1);
});

test('backoff has full jitter under an exponential ceiling; Retry-After reads seconds and HTTP dates', () => {
  assert.equal(
    backoffMs(0, 100, 5000, () => 1),
    100,
  );
  assert.equal(
    backoffMs(3, 100, 5000, () => 1),
    800,
  );
  assert.equal(
    backoffMs(10, 100, 5000, () => 1),
    5000,
  );
  assert.equal(
    backoffMs(10, 100, 5000, () => 0),
    0,
  );
  assert.equal(retryAfterMs('3'), 3000);
  assert.equal(retryAfterMs('Sun, 06 Dec 2026 04:00:10 GMT', Date.parse('2026-12-06T04:00:00Z')), 10_000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs('soon'), undefined);
});

test('an attempt past timeoutMs is a network failure, retried; a caller abort ends the call; calls leave no listener on the caller signal', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  // A proxy that never answers the pulls (it holds them open), and forwards the rest.
  const proxy = await startProxy(s.url, (req) => (req.url === '/v1/inbox/pull' ? 'answered' : 'forward'));
  t.after(() => proxy.close());
  const slow = client(proxy.url, { token: b.token }, { timeoutMs: 200, retry: { retries: 1, baseDelayMs: 10 } });
  const started = Date.now();
  await assert.rejects(slow.pull({ max: 1 }), (e: AdmpApiError) => {
    assert.equal(e.code, 'network');
    assert.match(e.message, /no answer within 200 ms/);
    return true;
  });
  assert.ok(Date.now() - started >= 400, 'two attempts of 200 ms each');
  assert.equal(proxy.seen.length, 2);

  const caller = new AbortController();
  const patient = client(proxy.url, { token: b.token }, { timeoutMs: 60_000 });
  const cut = patient.pull({ max: 1 }, { signal: caller.signal });
  setTimeout(() => caller.abort(new Error('consumer stopped')), 100);
  await assert.rejects(cut, /consumer stopped/);

  // A consumer passes its one long-lived signal to every pull: each call must unhook itself.
  const longLived = new AbortController();
  const alice = client(s.url, { token: a.token });
  const bob = client(s.url, { token: b.token });
  for (let i = 0; i < 20; i++) await alice.send({ to: b.address, type: 't', body: i });
  let got = 0;
  for (let i = 0; i < 20; i++) got += (await bob.pull({ max: 1 }, { signal: longLived.signal })).messages.length;
  assert.equal(got, 20);
  assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
});
