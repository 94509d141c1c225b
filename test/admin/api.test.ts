// The admin API (/admin/v1) against a real database: who may call it (admin tokens
// only; read-only tokens change nothing; agent and admin credentials never cross),
// message search with every filter and paging, detail with verdicts, dead letters
// redriven and deleted, overview, refusals and the policy dry-run, signing-key rotation,
// and the live event stream waking on new mail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApi, type TestAgent, type TestApi } from '../helpers/api.js';
import { createAdminToken, revokeAdminToken } from '../../src/db/admin-tokens.js';
import { recordRefusals } from '../../src/db/refusals.js';
import { FALLBACK_MS } from '../../src/http/admin/events.js';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function send(api: TestApi, from: TestAgent, to: TestAgent, extra: Record<string, unknown> = {}) {
  const r = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: from.auth,
    payload: { to: to.address, type: 'task.request', body: { n: 1 }, ...extra },
  });
  assert.equal(r.statusCode, 201, r.body);
  return r.json().id as string;
}

test('only live admin tokens reach /admin/v1; read-only ones change nothing; agent and admin credentials never cross', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const alice = await api.agent('alice');
  const rw = await createAdminToken(api.db.pool, 'ops', false);
  const ro = await createAdminToken(api.db.pool, 'viewer', true);
  const app = api.core.app;

  const { rows } = await api.db.pool.query('SELECT token_hash FROM admin_token WHERE id = $1', [rw.id]);
  assert.equal(rows[0].token_hash.length, 32, 'stored as a SHA-256 hash');
  assert.ok(!rows[0].token_hash.toString('latin1').includes(rw.token), 'never in the clear');

  const who = await app.inject({ url: '/admin/v1/whoami', headers: bearer(ro.token) });
  assert.deepEqual(who.json(), { id: ro.id, name: 'viewer', read_only: true });
  assert.equal(who.headers['cache-control'], 'no-store');

  for (const headers of [{}, alice.auth, bearer('admpadm_forged'), bearer(rw.token.slice(0, -1))]) {
    const r = await app.inject({ url: '/admin/v1/agents', headers });
    assert.equal(r.statusCode, 401, `${JSON.stringify(headers)}: ${r.body}`);
  }
  // An admin token is not an agent credential.
  const asAgent = await app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: bearer(rw.token), payload: {} });
  assert.equal(asAgent.statusCode, 401);
  // Unauthenticated callers learn nothing about the schema: 401 before 400.
  const bad = await app.inject({ method: 'POST', url: '/admin/v1/policy/rules', payload: { nonsense: 1 } });
  assert.equal(bad.statusCode, 401);

  // Read-only: every read works, every change is refused and nothing is written.
  for (const url of [
    '/admin/v1/agents',
    '/admin/v1/overview',
    '/admin/v1/messages',
    '/admin/v1/policy/rules',
    '/admin/v1/keys',
  ])
    assert.equal((await app.inject({ url, headers: bearer(ro.token) })).statusCode, 200, url);
  const changes = [
    { method: 'POST', url: '/admin/v1/agents', payload: { id: 'mallory' } },
    { method: 'POST', url: '/admin/v1/agents/alice/rotate', payload: { hmac: true } },
    { method: 'POST', url: '/admin/v1/policy/rules', payload: { from: '*', to: '*', action: 'allow' } },
    { method: 'DELETE', url: '/admin/v1/policy/rules/1' },
    { method: 'POST', url: '/admin/v1/keys/revoke', payload: { agent: 'alice' } },
    { method: 'POST', url: '/admin/v1/keys/rotate', payload: { agent: 'alice' } },
    {
      method: 'POST',
      url: '/admin/v1/keys',
      payload: { agent: 'w@agents.partner.example', kid: 'k1', public_key: Buffer.alloc(32, 7).toString('base64') },
    },
    {
      method: 'POST',
      url: '/admin/v1/dead-letters/redrive',
      payload: { messages: [{ id: '00000000-0000-4000-8000-000000000000', agent: 'alice' }] },
    },
  ] as const;
  for (const c of changes) {
    const r = await app.inject({ ...c, headers: bearer(ro.token) });
    assert.equal(r.statusCode, 403, `${c.method} ${c.url}: ${r.body}`);
    assert.equal(r.json().error.code, 'forbidden');
  }
  const dry = await app.inject({
    method: 'POST',
    url: '/admin/v1/policy/dry-run',
    headers: bearer(ro.token),
    payload: { from: 'alice@agents.test', to: 'alice@agents.test', type: 't' },
  });
  assert.equal(dry.statusCode, 200, 'a dry run changes nothing: read-only tokens may ask');
  const counts = await api.db.pool.query(
    'SELECT (SELECT count(*) FROM agent) AS agents, (SELECT count(*) FROM policy_rule) AS rules, (SELECT count(*) FROM agent_credential WHERE revoked_at IS NOT NULL) AS revoked',
  );
  assert.deepEqual(counts.rows[0], { agents: 1, rules: 0, revoked: 0 });

  // The read-write token changes things; revoked, it stops at once (no cache).
  const created = await app.inject({
    method: 'POST',
    url: '/admin/v1/agents',
    headers: bearer(rw.token),
    payload: { id: 'bob' },
  });
  assert.equal(created.statusCode, 201, created.body);
  assert.equal(created.json().address, 'bob@agents.test');
  assert.match(created.json().token, /^admp_/);
  const bobPull = await app.inject({
    method: 'POST',
    url: '/v1/inbox/pull',
    headers: bearer(created.json().token),
    payload: {},
  });
  assert.equal(bobPull.statusCode, 200, 'the token the admin API issued works for the agent');
  assert.ok(await revokeAdminToken(api.db.pool, rw.id));
  assert.equal((await app.inject({ url: '/admin/v1/whoami', headers: bearer(rw.token) })).statusCode, 401);
});

test('message search: every filter, newest first, paged by cursor; detail carries the delivery log', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b, c] = [await api.agent('alice'), await api.agent('bob'), await api.agent('carol')];
  const admin = await createAdminToken(api.db.pool, 'ops', true);
  const search = async (q: string) => {
    const r = await api.core.app.inject({ url: `/admin/v1/messages?${q}`, headers: bearer(admin.token) });
    assert.equal(r.statusCode, 200, r.body);
    return r.json() as { messages: { id: string; created_at: string }[]; next_cursor: string | null };
  };
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push(await send(api, a, i % 2 ? b : c, { correlation_id: `corr-${i % 3}` }));
  const fromBob = await send(api, b, c, { correlation_id: 'corr-bob' });
  // Two messages in the same microsecond must still page without loss or repeat.
  // (Read, then written as text: exact to the microsecond, and one statement per table on Citus.)
  const first = await api.db.pool.query('SELECT created_at::text AS at FROM message WHERE id = $1', [ids[1]]);
  for (const table of ['message', 'message_search'])
    await api.db.pool.query(`UPDATE ${table} SET created_at = $1::timestamptz WHERE id = $2`, [
      first.rows[0].at,
      ids[2],
    ]);

  assert.deepEqual(new Set((await search('agent=bob')).messages.map((m) => m.id)), new Set([ids[1], ids[3], ids[5]]));
  assert.deepEqual(
    (await search('sender=bob%40agents.test')).messages.map((m) => m.id),
    [fromBob],
  );
  assert.deepEqual(
    new Set((await search('correlation_id=corr-0')).messages.map((m) => m.id)),
    new Set([ids[0], ids[3], ids[6]]),
  );
  assert.equal((await search('status=delivered&channel=http')).messages.length, 8);
  assert.equal((await search('status=dead')).messages.length, 0);
  assert.equal((await search('channel=smtp')).messages.length, 0);
  assert.equal((await search(`before=${encodeURIComponent('2000-01-01T00:00:00Z')}`)).messages.length, 0);
  assert.equal(
    (await search(`after=${encodeURIComponent(new Date(Date.now() - 60000).toISOString())}`)).messages.length,
    8,
  );

  // Pages of 3: all 8, once each, newest first.
  const seen: string[] = [];
  let cursor: string | null = '';
  let pages = 0;
  while (cursor !== null) {
    const page = await search(`limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...page.messages.map((m) => m.id));
    cursor = page.next_cursor;
    pages++;
  }
  assert.equal(pages, 3);
  assert.deepEqual(new Set(seen), new Set([...ids, fromBob]));
  assert.equal(seen.length, 8);
  const all = (await search('limit=200')).messages;
  const times = all.map((m) => m.created_at);
  assert.deepEqual(times, [...times].sort().reverse(), 'newest first');

  for (const q of ['status=lost', 'limit=0', 'limit=201', 'cursor=bm9wZQ', 'after=yesterday', 'colour=red']) {
    const r = await api.core.app.inject({ url: `/admin/v1/messages?${q}`, headers: bearer(admin.token) });
    assert.equal(r.statusCode, 400, `${q}: ${r.body}`);
  }

  const detail = await api.core.app.inject({ url: `/admin/v1/messages/${ids[0]}`, headers: bearer(admin.token) });
  assert.equal(detail.statusCode, 200);
  const d = detail.json();
  assert.equal(d.from_agent, a.address);
  assert.equal(d.correlation_id, 'corr-0');
  assert.deepEqual(d.body, { n: 1 });
  assert.equal(d.delivery_log[0].event, 'delivered');
  const missing = await api.core.app.inject({
    url: '/admin/v1/messages/00000000-0000-4000-8000-000000000000',
    headers: bearer(admin.token),
  });
  assert.equal(missing.statusCode, 404);
});

test('dead letters: redrive puts them back in the inbox, delete removes them and their dedupe key', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  const admin = await createAdminToken(api.db.pool, 'ops', false);
  const post = (url: string, payload: unknown) =>
    api.core.app.inject({ method: 'POST', url, headers: bearer(admin.token), payload: payload as object });
  const one = await send(api, a, b);
  const two = await send(api, a, b, {});
  const keyed = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...a.auth, 'idempotency-key': 'k-1' },
    payload: { to: b.address, type: 'task.request', body: { n: 2 } },
  });
  const three = keyed.json().id as string;
  const alive = await send(api, a, b);
  await api.db.pool.query("UPDATE message SET status = 'dead' WHERE id = ANY($1::uuid[])", [[one, two, three]]);

  const red = await post('/admin/v1/dead-letters/redrive', {
    messages: [
      { id: one, agent: 'bob' },
      { id: alive, agent: 'bob' },
    ],
  });
  assert.equal(red.statusCode, 200, red.body);
  assert.deepEqual(red.json().ids, [one], 'only dead letters are redriven');
  const pulled = await api.core.app.inject({
    method: 'POST',
    url: '/v1/inbox/pull',
    headers: b.auth,
    payload: { max: 10 },
  });
  assert.deepEqual(new Set(pulled.json().messages.map((m: { id: string }) => m.id)), new Set([one, alive]));

  const del = await post('/admin/v1/dead-letters/delete', {
    messages: [
      { id: two, agent: 'bob' },
      { id: three, agent: 'bob' },
      { id: one, agent: 'bob' },
    ],
  });
  assert.deepEqual(new Set(del.json().ids), new Set([two, three]), 'a live message is never deleted');
  const left = await api.db.pool.query('SELECT id FROM message WHERE id = ANY($1::uuid[])', [[one, two, three]]);
  assert.deepEqual(
    left.rows.map((r) => r.id),
    [one],
  );
  // Their search entries go with them (migrations/0019_message_search_table.sql); the live one's stays.
  const entries = await api.db.pool.query('SELECT id FROM message_search WHERE id = ANY($1::uuid[])', [
    [one, two, three],
  ]);
  assert.deepEqual(
    entries.rows.map((r) => r.id),
    [one],
  );
  // The idempotency key of the deleted message is free again: a resend makes a new message.
  const again = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...a.auth, 'idempotency-key': 'k-1' },
    payload: { to: b.address, type: 'task.request', body: { n: 2 } },
  });
  assert.equal(again.statusCode, 201, again.body);
  assert.equal(again.json().duplicate ?? false, false);
  const exists = await api.db.pool.query('SELECT 1 FROM message WHERE id = $1', [again.json().id]);
  assert.equal(exists.rowCount, 1);

  for (const bad of [{ messages: [] }, { messages: [{ id: 'x', agent: 'bob' }] }, {}]) {
    assert.equal((await post('/admin/v1/dead-letters/delete', bad)).statusCode, 400, JSON.stringify(bad));
  }
});

test('overview, refusals, rules and the policy dry-run', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  const admin = await createAdminToken(api.db.pool, 'ops', false);
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    api.core.app.inject({ method, url, headers: bearer(admin.token), payload: payload as object });
  await send(api, a, b);
  await send(api, a, b);
  // Two outbound messages as they are stored once relayed: one a delivery report confirmed
  // (kept `sent` with delivered_at, shown `delivered`), one not (yet).
  const [confirmed, relayed] = [await send(api, a, b), await send(api, a, b)];
  await api.db.pool.query(`UPDATE message SET status = 'sent', delivered_at = now() WHERE id = $1`, [confirmed]);
  await api.db.pool.query(`UPDATE message SET status = 'sent', delivered_at = NULL WHERE id = $1`, [relayed]);

  const ov = (await call('GET', '/admin/v1/overview')).json();
  assert.deepEqual(
    ov.depth.map((d: { status: string; count: number }) => [d.status, d.count]),
    [
      ['sent', 1],
      ['delivered', 3],
    ],
    'counted by the status shown, as the message search shows them',
  );
  assert.equal(
    ov.throughput.reduce((n: number, t: { count: number }) => n + t.count, 0),
    4,
  );

  await recordRefusals(api.db.pool, [
    { road: 'rspamd', sender: 'x@evil.example', recipient: 'bob@agents.test', code: 'policy_denied', reason: 'no' },
  ]);
  const refusals = (await call('GET', '/admin/v1/refusals')).json();
  assert.equal(refusals[0].code, 'policy_denied');
  assert.equal(refusals[0].sender, 'x@evil.example');

  const dry = (from: string) =>
    call('POST', '/admin/v1/policy/dry-run', { from, to: 'bob@agents.test', type: 'task.request' });
  assert.deepEqual((await dry('alice@agents.test')).json(), { allow: true, rule: 'default: local sender' });
  assert.equal((await dry('x@agents.partner.example')).json().reason, 'unknown_sender');
  const added = await call('POST', '/admin/v1/policy/rules', {
    from: '*@agents.partner.example',
    to: 'bob@*',
    types: ['task.*'],
    action: 'allow',
  });
  assert.equal(added.statusCode, 201, added.body);
  const id = added.json().id;
  assert.deepEqual((await dry('x@agents.partner.example')).json(), { allow: true, rule: `db:${id}` });
  assert.equal((await call('GET', '/admin/v1/policy/rules')).json().length, 1);
  assert.equal((await call('DELETE', `/admin/v1/policy/rules/${id}`)).statusCode, 200);
  assert.equal((await call('DELETE', `/admin/v1/policy/rules/${id}`)).statusCode, 404);
  assert.equal((await dry('x@agents.partner.example')).json().allow, false);

  // Partner keys: pinned, listed, revoked.
  const publicKey = Buffer.alloc(32, 9).toString('base64');
  const pinned = await call('POST', '/admin/v1/keys', {
    agent: 'w@agents.partner.example',
    kid: 'k-1',
    public_key: publicKey,
  });
  assert.equal(pinned.statusCode, 201, pinned.body);
  assert.equal(pinned.json().source, 'pinned');
  const keys = (await call('GET', '/admin/v1/keys')).json();
  assert.deepEqual(
    keys.map((k: { kid: string; public_key: string }) => [k.kid, k.public_key]),
    [['k-1', publicKey]],
  );
  const revoked = await call('POST', '/admin/v1/keys/revoke', { domain: 'agents.partner.example', kid: 'k-1' });
  assert.deepEqual(revoked.json(), { revoked: ['k-1'] });
  assert.ok((await call('GET', '/admin/v1/keys')).json()[0].revoked_at);
  const ours = await call('POST', '/admin/v1/keys', { agent: 'bob@agents.test', kid: 'k-2', public_key: publicKey });
  assert.equal(ours.statusCode, 400, 'our own agents get keys by `admp key create`, not pinning');
});

test('the console is served with strict security headers', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const r = await api.core.app.inject({ url: '/console' });
  assert.equal(r.statusCode, 302);
  assert.equal(r.headers.location, '/console/');
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['referrer-policy'], 'no-referrer');
});

test("signing-key rotation: a new key, the agent's others retiring after the overlap, the DNS record to publish", async (t) => {
  const keysDir = mkdtempSync(join(tmpdir(), 'admp-admin-keys-'));
  t.after(() => rmSync(keysDir, { recursive: true, force: true }));
  const api = await startTestApi({ ADMP_KEYS_DIR: keysDir });
  t.after(() => api.close());
  await api.agent('alice');
  await api.agent('olga', 'agents.other.test');
  const admin = await createAdminToken(api.db.pool, 'ops', false);
  const rotate = (payload: object) =>
    api.core.app.inject({ method: 'POST', url: '/admin/v1/keys/rotate', headers: bearer(admin.token), payload });

  const first = await rotate({ agent: 'alice' });
  assert.equal(first.statusCode, 201, first.body);
  const k1 = first.json();
  assert.equal(k1.key.agent, 'alice@agents.test');
  assert.equal(k1.key.source, 'local');
  assert.deepEqual([k1.retiring, k1.retiring_at], [[], null], 'a first key retires nothing');
  assert.deepEqual(k1.dns, [
    {
      name: '_agentkeys.agents.test',
      text: `kid=${k1.key.kid}; x=${k1.key.public_key}; agent=alice@agents.test`,
    },
  ]);

  const started = Date.now();
  const second = await rotate({ agent: 'alice@agents.test', overlap_sec: 3600 });
  assert.equal(second.statusCode, 201, second.body);
  const k2 = second.json();
  assert.notEqual(k2.key.kid, k1.key.kid);
  assert.deepEqual(k2.retiring, [k1.key.kid]);
  const until = Date.parse(k2.retiring_at);
  assert.ok(Math.abs(until - started - 3600_000) < 60_000, k2.retiring_at);
  const listed = (await api.core.app.inject({ url: '/admin/v1/keys', headers: bearer(admin.token) })).json();
  const byKid = new Map(listed.map((k: { kid: string; not_after: string | null }) => [k.kid, k.not_after]));
  assert.equal(byKid.get(k1.key.kid), k2.retiring_at, 'the old key verifies until the overlap ends');
  assert.equal(byKid.get(k2.key.kid), null);
  // The private halves are on the server, one file per key, readable by its owner only.
  assert.deepEqual(
    readdirSync(keysDir).sort(),
    [`alice@agents.test.${k1.key.kid}.pem`, `alice@agents.test.${k2.key.kid}.pem`].sort(),
  );

  // An agent of another of our domains, by its address.
  const other = await rotate({ agent: 'olga@agents.other.test' });
  assert.equal(other.statusCode, 201, other.body);
  assert.equal(other.json().dns[0].name, '_agentkeys.agents.other.test');

  for (const [payload, status] of [
    [{ agent: 'nobody' }, 404],
    [{ agent: 'w@agents.partner.example' }, 400],
    [{ agent: 'alice', overlap_sec: 60 }, 400],
    [{ agent: 'alice', extra: 1 }, 400],
  ] as const) {
    const r = await rotate(payload);
    assert.equal(r.statusCode, status, `${JSON.stringify(payload)}: ${r.body}`);
  }
  assert.equal(readdirSync(keysDir).length, 3, 'a refused rotation writes no key file');
});

test('the event stream answers at once, then wakes on new mail well before its slow poll', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const admin = await createAdminToken(api.db.pool, 'viewer', true);
  const base = await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  const ctl = new AbortController();
  t.after(() => ctl.abort());
  const res = await fetch(`${base}/admin/v1/events`, { headers: bearer(admin.token), signal: ctl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  /** The next `overview` event's count of delivered messages. */
  const nextDelivered = async (): Promise<number> => {
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const m = /^event: overview\ndata: (.*)$/m.exec(frame);
        if (m) {
          const ov = JSON.parse(m[1]!) as { depth: { status: string; count: number }[] };
          return ov.depth.find((d) => d.status === 'delivered')?.count ?? 0;
        }
        continue;
      }
      const { value, done } = await reader.read();
      assert.ok(!done, 'the stream stays open');
      buf += value;
    }
  };
  assert.equal(await nextDelivered(), 0, 'the first overview comes at once');
  const sent = Date.now();
  await send(api, alice, bob);
  assert.equal(await nextDelivered(), 1);
  const ms = Date.now() - sent;
  assert.ok(ms < FALLBACK_MS / 2, `woken by the NOTIFY after ${ms} ms, not by the ${FALLBACK_MS} ms poll`);
});
