// Every bad input answers precisely and writes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { startTestApi } from '../helpers/api.js';

test('bad input: precise status, error code and field; no row written', async (t) => {
  const api = await startTestApi({ ADMP_MAX_BODY_BYTES: '2048' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  const { id } = (
    await api.core.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: a.auth,
      payload: { to: b.address, type: 't', body: {} },
    })
  ).json();
  const before = (await api.db.pool.query('SELECT count(*)::int AS n, max(delivery_log::text) AS log FROM message'))
    .rows[0];

  const cases: { name: string; req: InjectOptions; status: number; code: string; message?: RegExp }[] = [
    {
      name: 'unknown recipient',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: 'nobody@agents.test', type: 't', body: {} },
      },
      status: 404,
      code: 'unknown_recipient',
      message: /nobody@agents\.test/,
    },
    {
      name: 'recipient of another local domain',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: 'bob@agents.other.test', type: 't', body: {} },
      },
      status: 404,
      code: 'unknown_recipient',
    },
    {
      name: 'not an address',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: 'not an address', type: 't', body: {} },
      },
      status: 400,
      code: 'bad_request',
      message: /^to:/,
    },
    {
      name: 'body over the limit',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: b.address, type: 't', body: { x: 'y'.repeat(3000) } },
      },
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'request far over the limit',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: { ...a.auth, 'content-type': 'application/json' },
        payload: JSON.stringify({ to: b.address, type: 't', body: 'z'.repeat(200_000) }),
      },
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'malformed JSON',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: { ...a.auth, 'content-type': 'application/json' },
        payload: '{"to": "bob@agents.test", "type": ',
      },
      status: 400,
      code: 'invalid_json',
    },
    {
      name: 'missing field',
      req: { method: 'POST', url: '/v1/messages', headers: a.auth, payload: { to: b.address, body: {} } },
      status: 400,
      code: 'bad_request',
      message: /body\.type/,
    },
    {
      name: 'wrong type of field',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: b.address, type: 't', body: {}, ttl_sec: 'soon' },
      },
      status: 400,
      code: 'bad_request',
      message: /body\.ttl_sec/,
    },
    {
      name: 'unknown field',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: b.address, type: 't', body: {}, priority: 1 },
      },
      status: 400,
      code: 'bad_request',
      message: /priority/,
    },
    {
      name: 'bad type pattern',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: b.address, type: 'has space', body: {} },
      },
      status: 400,
      code: 'bad_request',
      message: /body\.type/,
    },
    {
      name: 'wrong content type',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: { ...a.auth, 'content-type': 'text/plain' },
        payload: 'hello',
      },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'no credentials',
      req: { method: 'POST', url: '/v1/messages', payload: { to: b.address, type: 't', body: {} } },
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'wrong token',
      req: {
        method: 'POST',
        url: '/v1/messages',
        headers: { authorization: 'Bearer admp_wrong' },
        payload: { to: b.address, type: 't', body: {} },
      },
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'garbage JWT',
      req: { method: 'GET', url: '/v1/inbox', headers: { authorization: 'Bearer a.b.c' } },
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'pull max out of range',
      req: { method: 'POST', url: '/v1/inbox/pull', headers: b.auth, payload: { max: 101 } },
      status: 400,
      code: 'bad_request',
      message: /body\.max/,
    },
    {
      name: 'pull carrying a malformed ack',
      req: {
        method: 'POST',
        url: '/v1/inbox/pull',
        headers: b.auth,
        payload: { max: 1, ack: [{ id: 'nope', lease_id: 'nope' }] },
      },
      status: 400,
      code: 'bad_request',
      message: /body\.ack\.0\.id/,
    },
    {
      name: 'pull wait out of range',
      req: { method: 'POST', url: '/v1/inbox/pull', headers: b.auth, payload: { max: 1, wait: 21 } },
      status: 400,
      code: 'bad_request',
      message: /body\.wait/,
    },
    {
      name: 'ack of a message in another inbox',
      req: { method: 'POST', url: `/v1/messages/${id}/ack`, headers: a.auth, payload: { lease_id: id } },
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'ack of an unknown message',
      req: {
        method: 'POST',
        url: '/v1/messages/00000000-0000-4000-8000-000000000000/ack',
        headers: b.auth,
        payload: { lease_id: id },
      },
      status: 404,
      code: 'not_found',
    },
    {
      name: 'ack with a lease never issued',
      req: {
        method: 'POST',
        url: `/v1/messages/${id}/ack`,
        headers: b.auth,
        payload: { lease_id: '00000000-0000-4000-8000-000000000000' },
      },
      status: 409,
      code: 'lease_conflict',
    },
    {
      name: 'id that is not a uuid',
      req: { method: 'GET', url: '/v1/messages/42', headers: b.auth },
      status: 400,
      code: 'bad_request',
      message: /params\.id/,
    },
    {
      name: 'reply to a message in another inbox',
      req: { method: 'POST', url: `/v1/messages/${id}/reply`, headers: a.auth, payload: { type: 't', body: {} } },
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'unknown route',
      req: { method: 'GET', url: '/v1/nothing', headers: b.auth },
      status: 404,
      code: 'not_found',
    },
    {
      name: 'redrive with neither ids nor all',
      req: { method: 'POST', url: '/v1/dead/redrive', headers: b.auth, payload: {} },
      status: 400,
      code: 'bad_request',
    },
  ];
  for (const c of cases) {
    const r = await api.core.app.inject(c.req);
    assert.equal(r.statusCode, c.status, `${c.name}: ${r.body}`);
    const err = r.json().error;
    assert.equal(err.code, c.code, c.name);
    assert.equal(typeof err.message, 'string', c.name);
    if (c.message) assert.match(err.message, c.message, c.name);
  }
  const after = (await api.db.pool.query('SELECT count(*)::int AS n, max(delivery_log::text) AS log FROM message'))
    .rows[0];
  assert.deepEqual(after, before, 'no error wrote or changed a row');
});

test('a database outage is a temporary failure (503), never a 4xx or a lost message', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  // Warm the auth and directory caches, then take the database away from this app.
  assert.equal(
    (
      await api.core.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: a.auth,
        payload: { to: b.address, type: 't', body: {} },
      })
    ).statusCode,
    201,
  );
  await api.db.block();
  const r = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: a.auth,
    payload: { to: b.address, type: 't', body: {} },
  });
  assert.equal(r.statusCode, 503, r.body);
  assert.equal(r.json().error.code, 'storage_unavailable');
  const ready = await api.core.app.inject({ url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  await api.db.unblock();
  // Ready again once the pool and the long-poll wake-up connection (reconnecting with backoff) are back.
  const deadline = Date.now() + 10_000;
  while ((await api.core.app.inject({ url: '/readyz' })).statusCode !== 200) {
    assert.ok(Date.now() < deadline, '/readyz stays 503 after the database came back');
    await new Promise((r) => setTimeout(r, 100));
  }
});

test('the body limit counts the bytes of the body as JSON, to the byte, with and without an Idempotency-Key', async (t) => {
  const api = await startTestApi({ ADMP_MAX_BODY_BYTES: '2048' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  // Keys out of order (the fingerprint sorts them), escapes, non-ASCII text and numbers:
  // the size is that of the JSON text, whichever serialisation measured it.
  const body = (fill: number) => ({ z: [1e21, 0.1, -0, true, null], 'k"\\': 'é\n😀\u0001', a: 'x'.repeat(fill) });
  const fill = 2048 - Buffer.byteLength(JSON.stringify(body(0)));
  let n = 0;
  for (const idempotent of [false, true])
    for (const [extra, status] of [
      [0, 201],
      [1, 413],
    ] as const) {
      const r = await api.core.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { ...a.auth, ...(idempotent ? { 'idempotency-key': `k-${n++}` } : {}) },
        payload: { to: b.address, type: 't', body: body(fill + extra) },
      });
      assert.equal(r.statusCode, status, `idempotent ${idempotent}, ${fill + extra} bytes of fill: ${r.body}`);
    }
});
