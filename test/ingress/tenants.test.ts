// Tenant subdomains (`*.tenants.test` in ADMP_DOMAINS) and address tokens against the real
// database, on the roads that do not need Debian packages: HTTP sends, the Rspamd route
// (as the plugin posts), LMTP over a socket, the admin API and the CLI. The SMTP edge
// and the e2e roads (Postfix, Rspamd's plugin) test the same addresses with real peers.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { admp as admpIn, admpBinary } from '../helpers/cli.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { lmtpSend } from '../helpers/lmtp-client.js';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import { addRule } from '../../src/db/policy-rules.js';
import { createAdminToken } from '../../src/db/admin-tokens.js';
import { loadConfig } from '../../src/config.js';
import { classifyDomain } from '../../src/core/domains.js';
import { ConfigError } from '../../src/errors.js';

const TOKEN = 'ingress-secret-for-tests-0123456789';
const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';
const DOMAINS = 'agents.test,*.tenants.test';
const ACME = 'acme.tenants.test';
const GLOBEX = 'globex.tenants.test';

interface World {
  api: TestApi;
  partner: ReturnType<typeof signer>;
  /** An agent of the plain domain, and one named bob in each of two tenants. */
  alice: { address: string; auth: { authorization: string } };
  acmeBob: { id: string; address: string; auth: { authorization: string } };
  globexBob: { id: string; address: string; auth: { authorization: string } };
}

async function setup(t: TestContext): Promise<World> {
  const api = await startTestApi({
    ADMP_DOMAINS: DOMAINS,
    ADMP_POLICY_FILE: '',
    ADMP_INGRESS_TOKEN: TOKEN,
    ADMP_MTA_HOSTNAME: MTA,
  });
  t.after(() => api.close());
  const partner = signer(`w@${PARTNER}`);
  await trust(api.db.pool, partner);
  await addRule(api.db.pool, { from: `*@${PARTNER}`, to: '*', action: 'allow' });
  const admin = api.core.admin;
  await admin.addTenant('acme');
  await admin.addTenant(GLOBEX);
  const agent = async (id: string, domain: string) => {
    const a = await admin.addAgent(id, domain);
    return {
      id: a.id,
      address: a.id.includes('@') ? a.id : `${a.id}@${domain}`,
      auth: { authorization: `Bearer ${a.token}` },
    };
  };
  return {
    api,
    partner,
    alice: await agent('alice', 'agents.test'),
    acmeBob: await agent('bob', ACME),
    globexBob: await agent('bob', GLOBEX),
  };
}

const send = (w: World, auth: { authorization: string }, to: string) =>
  w.api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: auth,
    payload: { to, type: 'note', body: {} },
  });
const pull = async (w: World, auth: { authorization: string }) =>
  (await w.api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: auth, payload: { max: 10 } })).json()
    .messages as { to: string; from: string }[];
const rspamd = (w: World, raw: Buffer, to: string) =>
  w.api.core.app.inject({
    method: 'POST',
    url: '/ingress/rspamd',
    payload: raw,
    headers: {
      'content-type': 'message/rfc822',
      authorization: `Bearer ${TOKEN}`,
      'x-envelope-from': `w@${PARTNER}`,
      'x-envelope-to': to,
      'x-rspamd-auth': JSON.stringify({ dkim: [{ result: 'allow', domain: PARTNER, selector: 's1' }] }),
    },
  });
const partnerMail = (w: World, to: string) => agentMail(w.partner, { to, type: 'task.request', body: {} });

test('ADMP_DOMAINS: a wildcard holds tenants one label deep; the first domain must be plain', () => {
  const config = loadConfig({ ADMP_DOMAINS: 'Agents.Test, *.Tenants.Test' });
  assert.deepEqual(config.domains, ['agents.test', '*.tenants.test']);
  assert.deepEqual(classifyDomain(config.domains, 'acme.tenants.test'), { kind: 'tenant', base: 'tenants.test' });
  assert.deepEqual(classifyDomain(config.domains, 'agents.test'), { kind: 'plain' });
  assert.equal(classifyDomain(config.domains, 'a.b.tenants.test'), undefined);
  assert.equal(classifyDomain(config.domains, 'tenants.test'), undefined);
  assert.equal(classifyDomain(config.domains, 'acme.other.test'), undefined);
  assert.throws(() => loadConfig({ ADMP_DOMAINS: '*.tenants.test,agents.test' }), ConfigError);
  assert.throws(() => loadConfig({ ADMP_DOMAINS: 'agents.test,*.*.x.test' }), ConfigError);
  assert.throws(() => loadConfig({ ADMP_DOMAINS: 'agents.test,not a domain' }), ConfigError);
});

test('tenants: each has its own agents; an unknown tenant, a bad name, a tenant with agents are refused', async (t) => {
  const w = await setup(t);
  const admin = w.api.core.admin;
  assert.equal(w.acmeBob.id, `bob@${ACME}`);
  assert.equal(w.globexBob.id, `bob@${GLOBEX}`);
  assert.deepEqual(
    (await admin.listTenants()).map((x) => [x.domain, x.agents]),
    [
      [ACME, 1],
      [GLOBEX, 1],
    ],
  );
  await assert.rejects(admin.addTenant('acme'), /already exists/);
  await assert.rejects(admin.addTenant('bad_name'), /one DNS label/);
  await assert.rejects(admin.addTenant('x.agents.test'), /not a subdomain under a wildcard/);
  await assert.rejects(admin.addAgent('carol', 'initech.tenants.test'), { code: 'unknown_tenant' });
  await assert.rejects(admin.addAgent('bob', ACME), /already exists/);
  await assert.rejects(admin.removeTenant('acme'), /still has 1 agent/);
  await admin.addTenant('empty');
  assert.equal(await admin.removeTenant('empty'), 'empty.tenants.test');
  await assert.rejects(admin.removeTenant('empty'), { code: 'not_found' });
  // The plain domain is as before: an agent's id is its local part.
  assert.ok((await admin.listAgents()).some((a) => a.id === 'alice' && a.address === 'alice@agents.test'));
});

test('HTTP: a tenant agent is reached by its address and pulls as itself; unknown tenants 404; tenants are apart', async (t) => {
  const w = await setup(t);
  const r = await send(w, w.alice.auth, `bob@${ACME}`);
  assert.equal(r.statusCode, 201, r.body);
  const got = await pull(w, w.acmeBob.auth);
  assert.deepEqual(
    got.map((m) => [m.from, m.to]),
    [['alice@agents.test', `bob@${ACME}`]],
  );
  assert.deepEqual(await pull(w, w.globexBob.auth), [], "globex's bob is another agent");
  const unknown = await send(w, w.alice.auth, 'bob@initech.tenants.test');
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().error.code, 'unknown_tenant');
  // A tenant's agent writes to the plain domain, not to another tenant's agents.
  assert.equal((await send(w, w.acmeBob.auth, 'alice@agents.test')).statusCode, 201);
  const across = await send(w, w.acmeBob.auth, `bob@${GLOBEX}`);
  assert.equal(across.statusCode, 422);
  assert.equal(across.json().error.code, 'policy_denied');
});

test('address tokens over HTTP: reach the agent, the sender sees the token only; revoked 410; agent names of that form refused', async (t) => {
  const w = await setup(t);
  const admin = w.api.core.admin;
  const tok = await admin.createAddressToken(`bob@${ACME}`);
  assert.match(tok.token, /^t-[0-9a-f]{32}$/);
  const address = `${tok.token}@${ACME}`;
  const r = await send(w, w.alice.auth, address);
  assert.equal(r.statusCode, 201, r.body);
  const status = await w.api.core.app.inject({ url: `/v1/messages/${r.json().id}`, headers: w.alice.auth });
  assert.equal(status.json().to, address, 'the sender never learns the name behind the token');
  assert.deepEqual(
    (await pull(w, w.acmeBob.auth)).map((m) => m.to),
    [`bob@${ACME}`],
  );
  // A token of another domain, or an unknown one, is no address.
  assert.equal((await send(w, w.alice.auth, `${tok.token}@${GLOBEX}`)).statusCode, 404);
  assert.equal((await send(w, w.alice.auth, `t-${'0'.repeat(32)}@${ACME}`)).statusCode, 404);
  assert.deepEqual(
    (await admin.listAddressTokens(`bob@${ACME}`)).map((x) => x.token),
    [tok.token],
  );
  await admin.revokeAddressToken(address.toUpperCase());
  const revoked = await send(w, w.alice.auth, address);
  assert.equal(revoked.statusCode, 410);
  assert.equal(revoked.json().error.code, 'address_revoked');
  await assert.rejects(admin.revokeAddressToken(address), { code: 'not_found' });
  await assert.rejects(admin.addAgent(`t-${'a'.repeat(32)}`), /address tokens/);
  await assert.rejects(admin.createAddressToken('nobody'), { code: 'not_found' });
});

test('Rspamd road: tenant and token addresses stored; unknown tenant 5.1.2, revoked token 5.1.6', async (t) => {
  const w = await setup(t);
  const tok = await w.api.core.admin.createAddressToken(`bob@${ACME}`);
  const address = `${tok.token}@${ACME}`;
  const a = await rspamd(w, await partnerMail(w, `bob@${ACME}`), `bob@${ACME}`);
  assert.equal(a.statusCode, 200, a.body);
  const b = await rspamd(w, await partnerMail(w, address), address);
  assert.equal(b.statusCode, 200, b.body);
  assert.equal(b.json().stored[0].recipient, address);
  const { rows } = await w.api.db.pool.query(
    "SELECT to_agent_id, headers->>'token' AS token FROM message ORDER BY created_at",
  );
  assert.deepEqual(rows, [
    { to_agent_id: `bob@${ACME}`, token: null },
    { to_agent_id: `bob@${ACME}`, token: address },
  ]);
  const unknown = await rspamd(w, await partnerMail(w, 'bob@initech.tenants.test'), 'bob@initech.tenants.test');
  assert.equal(unknown.statusCode, 422);
  assert.match(unknown.json().smtp_message, /^5\.1\.2 /);
  await w.api.core.admin.revokeAddressToken(address);
  const revoked = await rspamd(w, await partnerMail(w, address), address);
  assert.equal(revoked.statusCode, 422);
  assert.match(revoked.json().smtp_message, /^5\.1\.6 /);
});

test('LMTP road: tenant and token recipients answered at RCPT (550 5.1.2, 550 5.1.6) and stored', async (t) => {
  const w = await setup(t);
  const server = createLmtpServer({
    config: w.api.config,
    log: createLogger('silent'),
    ingest: w.api.core.ingest,
    directory: w.api.core.directory,
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => server.close(() => ok())));
  const port = (server.server.address() as AddressInfo).port;
  const admin = w.api.core.admin;
  const live = `${(await admin.createAddressToken(`bob@${ACME}`)).token}@${ACME}`;
  const gone = `${(await admin.createAddressToken(`bob@${ACME}`)).token}@${ACME}`;
  await admin.revokeAddressToken(gone);
  const ar = `Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s1 header.b=abc\r\n`;
  const deliver = async (to: string[], signedFor: string) =>
    lmtpSend(port, {
      from: `w@${PARTNER}`,
      to,
      data: Buffer.concat([Buffer.from(ar), await partnerMail(w, signedFor)]),
    });
  const tr = await deliver([`bob@${ACME}`, 'bob@initech.tenants.test', gone, `bob@${GLOBEX}x`], `bob@${ACME}`);
  assert.match(tr.rcpt[1]!, /^550 5\.1\.2 /);
  assert.match(tr.rcpt[2]!, /^550 5\.1\.6 /);
  assert.match(tr.rcpt[3]!, /^550 5\.7\.1 /, 'not ours at all');
  assert.match(tr.data[0]!, /^250 2\.6\.0 <bob@acme\.tenants\.test> stored as /);
  const viaToken = await deliver([live], live);
  assert.match(viaToken.data[0]!, new RegExp(`^250 2\\.6\\.0 <${live}> stored as `));
  const { rows } = await w.api.db.pool.query('SELECT to_agent_id FROM message');
  assert.deepEqual(
    rows.map((r: { to_agent_id: string }) => r.to_agent_id),
    [`bob@${ACME}`, `bob@${ACME}`],
  );
});

test('admin API: tenants and address tokens (read-only tokens may only list)', async (t) => {
  const w = await setup(t);
  const rw = await createAdminToken(w.api.db.pool, 'ops', false);
  const ro = await createAdminToken(w.api.db.pool, 'viewer', true);
  const call = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
    w.api.core.app.inject({
      method,
      url: `/admin/v1/${url}`,
      headers: { authorization: `Bearer ${token}` },
      ...(payload ? { payload } : {}),
    });
  const created = await call(rw.token, 'POST', 'tenants', { name: 'initech' });
  assert.equal(created.statusCode, 201, created.body);
  assert.equal(created.json().domain, 'initech.tenants.test');
  assert.equal((await call(ro.token, 'POST', 'tenants', { name: 'other' })).statusCode, 403);
  assert.deepEqual(
    (await call(ro.token, 'GET', 'tenants')).json().map((x: { domain: string }) => x.domain),
    [ACME, GLOBEX, 'initech.tenants.test'],
  );
  assert.equal((await call(rw.token, 'DELETE', 'tenants/acme')).statusCode, 400);
  const removed = await call(rw.token, 'DELETE', 'tenants/initech');
  assert.deepEqual(removed.json(), { removed: 'initech.tenants.test' });

  const tok = await call(rw.token, 'POST', 'addresses', { agent: `bob@${ACME}` });
  assert.equal(tok.statusCode, 201, tok.body);
  assert.match(tok.json().address, /^t-[0-9a-f]{32}@acme\.tenants\.test$/);
  assert.equal(tok.json().agent, `bob@${ACME}`);
  const listed = await call(ro.token, 'GET', `addresses?agent=${encodeURIComponent(`bob@${ACME}`)}`);
  assert.deepEqual(
    listed.json().map((x: { address: string }) => x.address),
    [tok.json().address],
  );
  const revoked = await call(rw.token, 'POST', 'addresses/revoke', { address: tok.json().address });
  assert.deepEqual(revoked.json(), { revoked: [tok.json().address] });
  assert.equal((await call(rw.token, 'POST', 'addresses/revoke', { address: tok.json().address })).statusCode, 404);
  assert.equal((await call(rw.token, 'POST', 'addresses/revoke', { address: `bob@${ACME}` })).statusCode, 400);
  // A tenant agent's credentials rotate by its id (its address).
  const rotated = await call(rw.token, 'POST', `agents/${encodeURIComponent(`bob@${ACME}`)}/rotate`, {});
  assert.equal(rotated.statusCode, 200, rotated.body);
  assert.equal(rotated.json().address, `bob@${ACME}`);
});

test('CLI: admp tenant add|list|remove and admp address create|list|revoke', async (t) => {
  const w = await setup(t);
  // In this process (test/helpers/cli.ts); the refused removal also as the real binary.
  const env = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: w.api.db.url,
    ADMP_DOMAINS: DOMAINS,
    ADMP_MIGRATE_ON_START: 'false',
  };
  const admp = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  assert.match(await admp('tenant', 'add', 'initech'), /tenant initech\.tenants\.test created/);
  assert.match(await admp('agent', 'add', 'carol', '--domain', 'initech.tenants.test'), /carol@initech\.tenants\.test/);
  assert.match(await admp('tenant', 'list'), /initech\.tenants\.test\s+1 /);
  const made = JSON.parse(await admp('address', 'create', 'carol@initech.tenants.test', '--json'));
  assert.match(made.address, /^t-[0-9a-f]{32}@initech\.tenants\.test$/);
  assert.match(await admp('address', 'revoke', made.address), /revoked/);
  for (const cli of [admpBinary, admpIn]) {
    const refused = await cli(env, 'tenant', 'remove', 'initech');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^admp: .*still has 1 agent/);
  }
});
