// The Mailbox service bounds every number and list an agent hands it (src/mailbox/limits.ts),
// and the Admin service the operator's (OPERATIONS_LIMITS), whichever interface it came through: a release delay of years, a pull of a million rows or
// a negative lease is a precise 400 naming the field, and nothing changes. The HTTP schemas
// and the MCP tools declare the same bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { MAILBOX_LIMITS } from '../../src/mailbox/limits.js';
import { OPERATIONS_LIMITS } from '../../src/admin/operations.js';
import type { Caller } from '../../src/mailbox/mailbox.js';

const ID = '0b7e3c1e-5b7a-4d2e-9c1f-2a3b4c5d6e7f';

async function leased(api: TestApi) {
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const from: Caller = { agentId: alice.id, domain: 'agents.test', address: alice.address };
  await api.core.mailbox.send(from, bob.address, { type: 't', body: {} });
  const caller: Caller = { agentId: bob.id, domain: 'agents.test', address: bob.address };
  const { rows } = await api.core.mailbox.pull(caller, { max: 1, visibility_timeout: 600 });
  const m = rows[0]!;
  return { bob, caller, ref: { id: m.id, lease_id: m.lease_id! } };
}

const refused = (field: string) => (e: Error & { code?: string; details?: { field?: string } }) => {
  assert.equal(e.code, 'bad_request', e.message);
  assert.equal(e.details?.field, field, e.message);
  assert.match(e.message, new RegExp(`^${field} must `));
  return true;
};

test('the service refuses a release delay, extension, pull, listing or batch outside its bounds, for every interface', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const { caller, ref } = await leased(api);
  const state = async () =>
    (
      await api.db.pool.query<{ status: string; lease_id: string; n: number }>(
        'SELECT status::text, lease_id::text, jsonb_array_length(delivery_log) AS n FROM message WHERE id = $1',
        [ref.id],
      )
    ).rows[0];
  const before = await state();
  const max = MAILBOX_LIMITS.releaseDelaySec;
  for (const delay_sec of [max + 1, 1e12, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
    await assert.rejects(api.core.mailbox.nack(caller, ref, { delay_sec }), refused('delay_sec'), `delay ${delay_sec}`);
  for (const extend_sec of [0, -60, MAILBOX_LIMITS.leaseSec + 1, 2.5])
    await assert.rejects(api.core.mailbox.nack(caller, ref, { extend_sec }), refused('extend_sec'));
  assert.deepEqual(await state(), before, 'a refused nack changes nothing');

  for (const max of [0, MAILBOX_LIMITS.pullMax + 1, 1_000_000])
    await assert.rejects(api.core.mailbox.pull(caller, { max }), refused('max'));
  await assert.rejects(api.core.mailbox.pull(caller, { max: 1, wait: MAILBOX_LIMITS.waitSec + 1 }), refused('wait'));
  for (const visibility_timeout of [0, -5, MAILBOX_LIMITS.leaseSec + 1])
    await assert.rejects(api.core.mailbox.pull(caller, { max: 1, visibility_timeout }), refused('visibility_timeout'));
  const many = Array.from({ length: MAILBOX_LIMITS.ackBatch + 1 }, () => ({ id: ID, lease_id: ID }));
  await assert.rejects(api.core.mailbox.pull(caller, { max: 1, ack: many }), refused('ack'));
  await assert.rejects(api.core.mailbox.ack(caller, many), refused('items'));
  await assert.rejects(api.core.mailbox.ack(caller, []), refused('items'));
  for (const limit of [0, MAILBOX_LIMITS.deadLetters + 1])
    await assert.rejects(api.core.mailbox.deadLetters(caller, limit), refused('limit'));
  const ids = Array.from({ length: MAILBOX_LIMITS.redriveIds + 1 }, () => ID);
  await assert.rejects(api.core.mailbox.redrive(caller, ids), refused('ids'));
  assert.deepEqual(await state(), before, 'nothing was claimed, acked or redriven');

  // At the bound: taken. The message comes back only after the whole delay.
  const r = await api.core.mailbox.nack(caller, ref, { delay_sec: max });
  assert.equal(r.status, 'delivered');
  const { rows } = await api.db.pool.query<{ s: number }>(
    'SELECT extract(epoch FROM visible_at - now())::int AS s FROM message WHERE id = $1',
    [ref.id],
  );
  assert.ok(Math.abs(rows[0]!.s - max) <= 2, `visible in ${rows[0]!.s} s`);
});

test('the service checks a sent or replied message against the envelope schema, for every interface', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const { bob, caller, ref } = await leased(api);
  const alice: Caller = { agentId: 'alice', domain: 'agents.test', address: 'alice@agents.test' };
  const count = async () => (await api.db.pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n as number;
  const before = await count();
  const envelope = (field: string) => (e: Error & { code?: string; details?: { field?: string } }) => {
    assert.equal(e.code, 'invalid_envelope', e.message);
    assert.equal(e.details?.field, field, e.message);
    return true;
  };
  for (const [field, msg] of [
    ['ttl_sec', { ttl_sec: 0 }],
    ['ttl_sec', { ttl_sec: -1 }],
    ['ttl_sec', { ttl_sec: 1e12 }],
    ['ttl_sec', { ttl_sec: 1.5 }],
    ['type', { type: '' }],
    ['type', { type: 'x'.repeat(129) }],
    ['subject', { subject: 's'.repeat(999) }],
    ['correlation_id', { correlation_id: 'c'.repeat(201) }],
    ['correlation_id', { correlation_id: '' }],
  ] as const) {
    await assert.rejects(api.core.mailbox.send(alice, bob.address, { type: 't', body: {}, ...msg }), envelope(field));
    await assert.rejects(api.core.mailbox.reply(caller, ref.id, { type: 't', body: {}, ...msg }), envelope(field));
  }
  for (const idempotency_key of ['', 'k'.repeat(MAILBOX_LIMITS.idempotencyKeyChars + 1)])
    await assert.rejects(
      api.core.mailbox.send(alice, bob.address, { type: 't', body: {}, idempotency_key }),
      refused('idempotency_key'),
    );
  assert.equal(await count(), before, 'nothing was stored');
  const ok = await api.core.mailbox.send(alice, bob.address, {
    type: 't',
    body: {},
    ttl_sec: 31_536_000,
    idempotency_key: 'k'.repeat(MAILBOX_LIMITS.idempotencyKeyChars),
  });
  assert.equal(ok.duplicate, false);
});

test('HTTP: the same bounds, declared in the schema, refused 400 before the service', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const { bob, ref } = await leased(api);
  const nack = (payload: object) =>
    api.core.app.inject({ method: 'POST', url: `/v1/messages/${ref.id}/nack`, headers: bob.auth, payload });
  for (const body of [
    { delay_sec: MAILBOX_LIMITS.releaseDelaySec + 1 },
    { delay_sec: -1 },
    { extend_sec: 0 },
    { extend_sec: MAILBOX_LIMITS.leaseSec + 1 },
  ]) {
    const r = await nack({ lease_id: ref.lease_id, ...body });
    assert.equal(r.statusCode, 400, `${JSON.stringify(body)}: ${r.body}`);
    assert.equal(r.json().error.code, 'bad_request');
  }
  const ok = await nack({ lease_id: ref.lease_id, delay_sec: MAILBOX_LIMITS.releaseDelaySec });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().status, 'delivered');

  // The OpenAPI document tells clients the service's own numbers.
  const doc = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
  const nackSchema = doc.paths['/v1/messages/{id}/nack'].post.requestBody.content['application/json'].schema;
  assert.equal(nackSchema.properties.delay_sec.maximum, MAILBOX_LIMITS.releaseDelaySec);
  assert.equal(nackSchema.properties.extend_sec.maximum, MAILBOX_LIMITS.leaseSec);
  const pullSchema = doc.paths['/v1/inbox/pull'].post.requestBody.content['application/json'].schema;
  assert.equal(pullSchema.properties.max.maximum, MAILBOX_LIMITS.pullMax);
  assert.equal(pullSchema.properties.wait.maximum, MAILBOX_LIMITS.waitSec);
});

test("the Admin service bounds the operator's pages and batches itself, whichever adapter calls it", async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const admin = api.core.admin;
  for (const limit of [0, OPERATIONS_LIMITS.searchPage + 1])
    await assert.rejects(admin.search({ limit }), refused('limit'));
  for (const limit of [0, -1, OPERATIONS_LIMITS.recent + 1, 2.5]) {
    await assert.rejects(admin.refusals(limit), refused('limit'));
    await assert.rejects(admin.outboundFailures(limit), refused('limit'));
  }
  const refs = Array.from({ length: OPERATIONS_LIMITS.messageRefs + 1 }, () => ({ id: ID, agent: 'bob' }));
  await assert.rejects(admin.redrive(refs), refused('messages'));
  await assert.rejects(admin.deleteDead([]), refused('messages'));
  assert.deepEqual(await admin.refusals(OPERATIONS_LIMITS.recent), []);
  assert.deepEqual(await admin.redrive([{ id: ID, agent: 'bob' }]), []);
});
