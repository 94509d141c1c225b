// Client input the database or a serialiser cannot take (NUL, lone surrogates, unbounded
// nesting, times outside PostgreSQL's range, non-ASCII look-alike addresses): a precise
// 4xx naming the problem on every route and interface, never a 500, and nothing written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { startTestApi } from '../helpers/api.js';
import { createAdminToken } from '../../src/db/admin-tokens.js';
import { MAX_JSON_DEPTH } from '../../src/core/storable.js';

const nested = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

test('NUL, lone surrogates, deep nesting and out-of-range times: 400 naming the problem on every route; no row written', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const admin = await createAdminToken(api.db.pool, 'ops', false);
  const adminAuth = { authorization: `Bearer ${admin.token}` };
  const json = { 'content-type': 'application/json' };
  const send = (raw: string): InjectOptions => ({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...alice.auth, ...json },
    payload: raw,
  });
  const to = JSON.stringify(bob.address);
  const count = async () => (await api.db.pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n as number;

  const cases: { name: string; req: InjectOptions; status: number; code: string; message: RegExp }[] = [
    {
      name: 'NUL in the body',
      req: send(`{"to":${to},"type":"t","body":{"note":"a\\u0000b"}}`),
      status: 400,
      code: 'invalid_json',
      message: /^body\.body\.note contains U\+0000 \(NUL\), which cannot be stored$/,
    },
    {
      name: 'NUL in the subject',
      req: send(`{"to":${to},"type":"t","subject":"\\u0000","body":{}}`),
      status: 400,
      code: 'invalid_json',
      message: /^body\.subject contains U\+0000/,
    },
    {
      name: 'NUL in a key',
      req: send(`{"to":${to},"type":"t","body":{"a\\u0000":1}}`),
      status: 400,
      code: 'invalid_json',
      message: /^body\.body has a key that contains U\+0000/,
    },
    {
      name: 'a lone high surrogate',
      req: send(`{"to":${to},"type":"t","body":["ok","\\ud800x"]}`),
      status: 400,
      code: 'invalid_json',
      message: /^body\.body\[1\] contains a lone surrogate U\+D800, which is not Unicode text$/,
    },
    {
      name: 'a lone low surrogate in a key',
      req: send(`{"to":${to},"type":"t","body":{"\\udc00":1}}`),
      status: 400,
      code: 'invalid_json',
      message: /^body\.body has a key that contains a lone surrogate U\+DC00/,
    },
    {
      name: `nesting one level over ${MAX_JSON_DEPTH}`,
      req: send(`{"to":${to},"type":"t","body":${nested(MAX_JSON_DEPTH)}}`),
      status: 400,
      code: 'invalid_json',
      message: new RegExp(`is nested deeper than ${MAX_JSON_DEPTH} levels$`),
    },
    {
      name: 'nesting thousands of levels deep',
      req: send(`{"to":${to},"type":"t","body":${nested(5000)}}`),
      status: 400,
      code: 'invalid_json',
      message: /nested deeper than/,
    },
    {
      name: 'a reply with NUL',
      req: {
        method: 'POST',
        url: '/v1/messages/00000000-0000-4000-8000-000000000000/reply',
        headers: { ...bob.auth, ...json },
        payload: '{"type":"t","body":"\\u0000"}',
      },
      status: 400,
      code: 'invalid_json',
      message: /^body\.body contains U\+0000/,
    },
    {
      name: 'dead letters before the year 0000',
      req: { method: 'GET', url: '/v1/dead?before=0000-01-01T00:00:00Z', headers: bob.auth },
      status: 400,
      code: 'bad_request',
      message: /^before: 0000-01-01T00:00:00Z is outside the years 0001–9999 \(UTC\)$/,
    },
    {
      name: 'admin search after the year 0000',
      req: { method: 'GET', url: '/admin/v1/messages?after=0000-06-01T00:00:00Z', headers: adminAuth },
      status: 400,
      code: 'bad_request',
      message: /^after: 0000-06-01T00:00:00Z is outside the years 0001–9999/,
    },
    {
      name: 'admin key expiring in the year 0000',
      req: {
        method: 'POST',
        url: '/admin/v1/keys',
        headers: { ...adminAuth, ...json },
        payload: JSON.stringify({
          agent: 'w@agents.partner.example',
          kid: 'k1',
          public_key: `${'A'.repeat(43)}=`,
          not_after: '0000-01-01T00:00:00Z',
        }),
      },
      status: 400,
      code: 'bad_request',
      message: /^not_after: .* is outside the years 0001–9999/,
    },
    {
      name: 'admin policy rule with NUL',
      req: {
        method: 'POST',
        url: '/admin/v1/policy/rules',
        headers: { ...adminAuth, ...json },
        payload: '{"from":"*\\u0000","to":"*","action":"allow"}',
      },
      status: 400,
      code: 'invalid_json',
      message: /^body\.from contains U\+0000/,
    },
    {
      name: 'admin API nested thousands deep',
      req: {
        method: 'POST',
        url: '/admin/v1/policy/dry-run',
        headers: { ...adminAuth, ...json },
        payload: `{"from":${nested(3000)}}`,
      },
      status: 400,
      code: 'invalid_json',
      message: /nested deeper than/,
    },
  ];
  for (const c of cases) {
    const r = await api.core.app.inject(c.req);
    assert.equal(r.statusCode, c.status, `${c.name}: ${r.body}`);
    const err = r.json().error;
    assert.equal(err.code, c.code, c.name);
    assert.match(err.message, c.message, c.name);
  }
  assert.equal(await count(), 0, 'nothing was written');

  // A well-formed pair is text: stored and served back as sent.
  const ok = await api.core.app.inject(send(`{"to":${to},"type":"t","body":{"e":"\\ud83d\\ude00","d":${nested(60)}}}`));
  assert.equal(ok.statusCode, 201, ok.body);
  const pulled = await api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: bob.auth, payload: {} });
  assert.equal(pulled.json().messages[0].body.e, '😀');
});

test('the mailbox service refuses the same for every interface that calls it (MCP, the console)', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const caller = { agentId: alice.id, domain: 'agents.test', address: alice.address };
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  for (const [body, message] of [
    [{ x: 'a\u0000' }, /^message\.body\.x contains U\+0000/],
    [{ x: '\udfff' }, /^message\.body\.x contains a lone surrogate U\+DFFF/],
    [deep, /^message\.body(\[0\])+ is nested deeper than 64 levels$/],
  ] as const)
    await assert.rejects(api.core.mailbox.send(caller, bob.address, { type: 't', body }), (e: Error) => {
      assert.equal((e as { code?: string }).code, 'invalid_json');
      assert.match(e.message, message);
      return true;
    });
  await assert.rejects(
    api.core.mailbox.deadLetters(caller, 10, '0000-01-01T00:00:00Z'),
    /before: .* outside the years/,
  );
});

test('non-ASCII agent addresses are refused, never folded into an ASCII agent (U+212A KELVIN SIGN is not "k")', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [alice] = [await api.agent('alice'), await api.agent('kim')];
  for (const to of ['\u212Aim@agents.test', '\u212Aim', '\u212Aim+x@agents.test', 'kim@agents.\u212Aest']) {
    const r = await api.core.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: alice.auth,
      payload: { to, type: 't', body: {} },
    });
    assert.equal(r.statusCode, 400, `${JSON.stringify(to)}: ${r.body}`);
    assert.equal(r.json().error.code, 'bad_request');
    assert.match(r.json().error.message, /^to: .* is not an agent address/);
  }
  const { rows } = await api.db.pool.query("SELECT count(*)::int AS n FROM message WHERE to_agent_id = 'kim'");
  assert.equal(rows[0].n, 0, 'nothing reached kim');
  // The admin side: an agent id or domain that is not ASCII is refused, not folded.
  await assert.rejects(api.core.admin.addAgent('\u212Aim'), /agent id/);
  await assert.rejects(api.core.admin.addAgent('kim2', 'agents.\u212Aest'), /not a DNS name/);
});
