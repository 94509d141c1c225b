// Property tests of the API's JSON inputs (fast-check, fixed seeds): whatever JSON a
// client sends to a route, the answer is a 2xx or a 4xx with an error code, never a 5xx;
// what is stored is served back exactly as sent, and what cannot be stored is refused
// (400 invalid_json) naming the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startTestApi } from '../helpers/api.js';
import { createAdminToken } from '../../src/db/admin-tokens.js';
import { unstorableJson } from '../../src/core/storable.js';

const SEED = 20261206;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

/** Text, including what PostgreSQL cannot store (NUL) and what is not Unicode (lone surrogates). */
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '\u0000', 'a\u0000b', '\ud800', 'x\udc00', '\udbff\udfff', '😀', ' \t\r\n', 'K\u212A'),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    hostileString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;
/** A JSON value nested `depth` arrays deep. */
const nestedArrays = fc.integer({ min: 1, max: 2000 }).map((depth) => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
});

const ok = (status: number) => status < 500;

test('POST /v1/messages: any JSON body is stored exactly or refused with a 4xx, never a 5xx', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const message = fc.record(
    {
      to: fc.oneof(fc.constant(bob.address), hostileString, json),
      type: fc.oneof(fc.constantFrom('task.request', 'note'), hostileString, json),
      subject: fc.oneof(hostileString, json),
      correlation_id: fc.oneof(hostileString, json),
      ttl_sec: fc.oneof(fc.integer(), json),
      body: fc.oneof(json, nestedArrays),
    },
    { requiredKeys: [] },
  );
  await fc.assert(
    fc.asyncProperty(message, async (m) => {
      const r = await api.core.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { ...alice.auth, 'content-type': 'application/json' },
        payload: JSON.stringify(m),
      });
      assert.ok(ok(r.statusCode), `${r.statusCode}: ${r.body}`);
      if (r.statusCode >= 400) {
        assert.equal(typeof r.json().error.code, 'string');
        if (unstorableJson(m, 'body')) assert.equal(r.json().error.code, 'invalid_json');
        return;
      }
      assert.equal(r.statusCode, 201);
      assert.equal(unstorableJson(m, 'body'), undefined, 'stored only when storable');
      const pulled = await api.core.app.inject({
        method: 'POST',
        url: '/v1/inbox/pull',
        headers: bob.auth,
        payload: { max: 1, visibility_timeout: 1 },
      });
      const [got] = pulled.json().messages;
      assert.equal(got.id, r.json().id);
      assert.deepEqual(got.body, JSON.parse(JSON.stringify(m.body)), 'served back as sent');
      assert.equal(got.subject ?? undefined, m.subject);
      const ack = await api.core.app.inject({
        method: 'POST',
        url: `/v1/messages/${got.id}/ack`,
        headers: bob.auth,
        payload: { lease_id: got.lease_id },
      });
      assert.equal(ack.statusCode, 200, ack.body);
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

test('every other JSON route: arbitrary bodies and query strings answer 2xx or 4xx, never 5xx', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const bob = await api.agent('bob');
  const admin = await createAdminToken(api.db.pool, 'ops', false);
  const routes: { method: 'POST'; url: string; headers: Record<string, string> }[] = [
    { method: 'POST', url: '/v1/inbox/pull', headers: bob.auth },
    { method: 'POST', url: '/v1/messages/ack', headers: bob.auth },
    { method: 'POST', url: '/v1/messages/00000000-0000-4000-8000-000000000000/nack', headers: bob.auth },
    { method: 'POST', url: '/v1/messages/00000000-0000-4000-8000-000000000000/reply', headers: bob.auth },
    { method: 'POST', url: '/v1/dead/redrive', headers: bob.auth },
    { method: 'POST', url: '/admin/v1/policy/rules', headers: { authorization: `Bearer ${admin.token}` } },
    { method: 'POST', url: '/admin/v1/policy/dry-run', headers: { authorization: `Bearer ${admin.token}` } },
    { method: 'POST', url: '/admin/v1/agents', headers: { authorization: `Bearer ${admin.token}` } },
  ];
  // Bodies of the right shape with hostile values reach past schema validation to the services.
  const shaped = fc.oneof(
    json,
    nestedArrays,
    fc.record({
      from: hostileString,
      to: hostileString,
      types: fc.array(hostileString, { maxLength: 3 }),
      subject: hostileString,
      action: fc.constantFrom('allow', 'deny'),
    }),
    fc.record({ from: hostileString, to: hostileString, type: hostileString, subject: hostileString }),
    fc.record({ id: hostileString, domain: hostileString }, { requiredKeys: ['id'] }),
    fc.record({ max: fc.integer({ min: 1, max: 100 }), visibility_timeout: fc.integer(), wait: fc.constant(0) }),
    fc.record({ type: hostileString, body: json, subject: hostileString }),
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), shaped, async (route, body) => {
      const r = await api.core.app.inject({
        ...route,
        headers: { ...route.headers, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      assert.ok(ok(r.statusCode), `${route.url} ${r.statusCode}: ${r.body}`);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  const time = fc.oneof(
    hostileString,
    fc.constantFrom('0000-01-01T00:00:00Z', '9999-12-31T23:59:60Z', '10000-01-01T00:00:00Z', '2026-02-30T00:00:00Z'),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  );
  const query = fc.dictionary(
    fc.constantFrom('limit', 'before', 'after', 'q', 'agent', 'status', 'cursor'),
    fc.oneof(hostileString, time, fc.integer().map(String)),
    {
      maxKeys: 3,
    },
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('/v1/dead', '/admin/v1/messages', '/v1/inbox'), query, async (url, q) => {
      const headers = url.startsWith('/admin') ? { authorization: `Bearer ${admin.token}` } : bob.auth;
      const r = await api.core.app.inject({ method: 'GET', url, query: q, headers });
      assert.ok(ok(r.statusCode), `${url} ${JSON.stringify(q)} ${r.statusCode}: ${r.body}`);
    }),
    { seed: SEED, numRuns: RUNS },
  );
});
