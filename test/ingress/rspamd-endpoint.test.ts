// POST /ingress/rspamd through the real pipeline and database: every answer the
// Rspamd plugin maps to an SMTP reply, and the state each leaves behind.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { startDns } from '../helpers/dns.js';
import { LOOPBACK_ALLOWED, loopbackLookup, startJwksServer } from '../keys/loopback.js';

const TOKEN = 'ingress-secret-for-tests-0123456789';
const PARTNER = 'agents.partner.example';

// One policy file for every test here, removed when they are done.
const policyDir = mkdtempSync(join(tmpdir(), 'admp-policy-'));
after(() => rmSync(policyDir, { recursive: true, force: true }));
const POLICY_FILE = join(policyDir, 'policy.yaml');
writeFileSync(
  POLICY_FILE,
  [
    'rules:',
    `  - { from: "*@${PARTNER}", to: "*@agents.test", types: ["task.*"], action: allow }`,
    `  - { from: "spammer@${PARTNER}", to: "*", action: deny }`,
    'sasl:',
    '  - { user: "alice@mail.test", agents: ["alice@agents.test"] }',
  ].join('\n'),
);

const dkimPass = (domain: string) =>
  JSON.stringify({
    dkim: [{ result: 'allow', domain, selector: 's1' }],
    spf: { symbol: 'R_SPF_ALLOW' },
    dmarc: { symbol: 'DMARC_POLICY_ALLOW' },
  });

async function ingest(
  api: TestApi,
  raw: Buffer,
  o: { to: string; auth?: string; token?: string; user?: string; from?: string },
) {
  return api.core.app.inject({
    method: 'POST',
    url: '/ingress/rspamd',
    payload: raw,
    headers: {
      'content-type': 'message/rfc822',
      authorization: `Bearer ${o.token ?? TOKEN}`,
      'x-envelope-from': o.from ?? 'sender@agents.partner.test',
      'x-envelope-to': o.to,
      'x-rspamd-queue-id': 'Q1',
      'x-rspamd-auth': o.auth ?? dkimPass(PARTNER),
      ...(o.user ? { 'x-rspamd-user': o.user } : {}),
    },
  });
}

// The partner's key servers, on loopback: a JWKS web server (an empty key set unless
// a test says otherwise) and a DNS server with no _agentkeys records.
async function setup(t: { after(fn: () => Promise<void>): void }) {
  const jwks = await startJwksServer();
  const dns = await startDns();
  jwks.set(PARTNER, { body: { keys: [] } });
  const api = await startTestApi(
    {
      ADMP_INGRESS_TOKEN: TOKEN,
      ADMP_POLICY_FILE: POLICY_FILE,
      ADMP_JWKS_SCHEME: 'http',
      ADMP_FETCH_ALLOW: LOOPBACK_ALLOWED,
      ADMP_JWKS_PORT: String(jwks.port),
      ADMP_DNS_SERVERS: dns.server,
      ADMP_KEY_FETCH_TIMEOUT_MS: '300',
      ADMP_DNS_TIMEOUT_MS: '300',
    },
    { keyDeps: { lookup: loopbackLookup() } },
  );
  t.after(async () => {
    await api.close();
    await jwks.stop();
    await dns.stop();
  });
  const bob = await api.agent('bob');
  const partner = signer(`worker@${PARTNER}`);
  await trust(api.db.pool, partner);
  return { api, bob, partner, jwks };
}

const count = async (api: TestApi) =>
  (await api.db.pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n as number;

test('a signed partner mail with an aligned DKIM pass is stored once; redelivery answers 200 with the same id', async (t) => {
  const { api, bob, partner } = await setup(t);
  const raw = await agentMail(partner, {
    to: bob.address,
    type: 'task.request',
    subject: 'Résumé ✓',
    body: { job: 42 },
    correlation_id: 'c-9',
  });
  const first = await ingest(api, raw, { to: bob.address });
  assert.equal(first.statusCode, 200, first.body);
  const [stored] = first.json().stored;
  assert.equal(stored.duplicate, false);
  const again = await Promise.all([ingest(api, raw, { to: bob.address }), ingest(api, raw, { to: bob.address })]);
  for (const r of again) {
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().stored[0].id, stored.id);
    assert.equal(r.json().stored[0].duplicate, true);
  }
  assert.equal(await count(api), 1);
  const pulled = (
    await api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: bob.auth, payload: { max: 5 } })
  ).json().messages;
  assert.equal(pulled.length, 1);
  assert.equal(pulled[0].from, partner.agent);
  assert.equal(pulled[0].channel, 'smtp');
  assert.equal(pulled[0].subject, 'Résumé ✓');
  assert.deepEqual(pulled[0].body, { job: 42 });
  assert.equal(pulled[0].correlation_id, 'c-9');
  assert.equal(pulled[0].auth.signature.kid, partner.kid);
  assert.equal(pulled[0].auth.signature.key_source, 'pinned');
  assert.equal(pulled[0].auth.domain.method, `dkim:${PARTNER}`);
});

test('refusals are 422 with an SMTP text, and store nothing', async (t) => {
  const { api, bob, partner } = await setup(t);
  await api.agent('carol');
  const good = { to: bob.address, type: 'task.request', body: { a: 1 } };
  const cases: { name: string; raw: Buffer; to?: string; auth?: string; code: string; enhanced: string }[] = [
    {
      name: 'no DKIM pass',
      raw: await agentMail(partner, good),
      auth: JSON.stringify({ dkim: [{ result: 'reject', domain: PARTNER }] }),
      code: 'domain_auth_failed',
      enhanced: '5.7.26',
    },
    {
      name: 'DKIM pass for an unaligned domain',
      raw: await agentMail(partner, good),
      auth: dkimPass('evil.test'),
      code: 'domain_auth_failed',
      enhanced: '5.7.26',
    },
    {
      name: 'a forged Authentication-Results in the mail is not a verdict',
      raw: Buffer.concat([
        Buffer.from(`Authentication-Results: mx.agents.test; dkim=pass header.d=${PARTNER}\r\n`),
        await agentMail(partner, good),
      ]),
      auth: JSON.stringify({ dkim: [] }),
      code: 'domain_auth_failed',
      enhanced: '5.7.26',
    },
    {
      name: 'signed for another recipient (replay to carol)',
      raw: await agentMail(partner, good),
      to: 'carol@agents.test',
      code: 'signature_invalid',
      enhanced: '5.7.7',
    },
    {
      name: 'tampered envelope',
      raw: Buffer.from(
        (await agentMail(partner, good))
          .toString('latin1')
          .replace(
            /filename=admp-envelope.json\r\n\r\n(\S+)/,
            (_m, b64: string) =>
              `filename=admp-envelope.json\r\n\r\n${Buffer.from(Buffer.from(b64, 'base64').toString().replace('"a":1', '"a":2')).toString('base64')}`,
          ),
        'latin1',
      ),
      code: 'signature_invalid',
      enhanced: '5.7.7',
    },
    {
      // Old signatures are fine for the signature validity (5 days); the skew bounds the future.
      name: 'timestamp ahead of our clock by more than the skew',
      raw: await agentMail(partner, good, { now: Math.floor(Date.now() / 1000) + 900 }),
      code: 'signature_expired',
      enhanced: '5.7.7',
    },
    {
      name: 'unknown key id (no JWKS, no DNS record)',
      raw: await agentMail({ ...partner, kid: 'nope' }, good),
      code: 'unknown_key',
      enhanced: '5.7.7',
    },
    {
      name: 'unsigned mail',
      raw: Buffer.from(
        `From: <${partner.agent}>\r\nTo: <${bob.address}>\r\nSubject: x\r\nMessage-ID: <u1@x>\r\n\r\n{"to":"${bob.address}","type":"task.request","body":{}}\r\n`,
      ),
      code: 'signature_missing',
      enhanced: '5.7.7',
    },
    {
      name: 'a type policy does not admit',
      raw: await agentMail(partner, { ...good, type: 'chat.message' }),
      code: 'policy_denied',
      enhanced: '5.7.1',
    },
    {
      name: 'unknown agent',
      raw: await agentMail(partner, { ...good, to: 'nobody@agents.test' }),
      to: 'nobody@agents.test',
      code: 'unknown_recipient',
      enhanced: '5.1.1',
    },
  ];
  for (const c of cases) {
    const r = await ingest(api, c.raw, { to: c.to ?? bob.address, auth: c.auth });
    assert.equal(r.statusCode, 422, `${c.name}: ${r.body}`);
    assert.equal(r.json().error.code, c.code, c.name);
    assert.match(r.json().smtp_message, new RegExp(`^${c.enhanced.replace(/\./g, '\\.')} `), c.name);
  }
  assert.equal(await count(api), 0);
});

test('an unknown external sender is refused by the default policy; a SASL user mapped to a local agent is admitted', async (t) => {
  const { api, bob } = await setup(t);
  const stranger = signer('x@agents.stranger.example');
  await trust(api.db.pool, stranger);
  const r1 = await ingest(api, await agentMail(stranger, { to: bob.address, type: 'task.request', body: {} }), {
    to: bob.address,
    auth: dkimPass('agents.stranger.example'),
  });
  assert.equal(r1.statusCode, 422);
  assert.equal(r1.json().error.code, 'policy_denied');
  await api.agent('alice');
  const alice = signer('alice@agents.test');
  await trust(api.db.pool, alice, 'local');
  const unsigned = JSON.stringify({ dkim: [] });
  const raw = await agentMail(alice, { to: bob.address, type: 'note', body: { hi: 1 } });
  assert.equal(
    (await ingest(api, raw, { to: bob.address, auth: unsigned, user: 'mallory@mail.test' })).statusCode,
    422,
    'a SASL user not mapped to the agent',
  );
  const ok = await ingest(api, raw, { to: bob.address, auth: unsigned, user: 'alice@mail.test' });
  assert.equal(ok.statusCode, 200, ok.body);
});

test('faults of ours are 503 (database down, key server unreachable) and store nothing', async (t) => {
  const { api, bob, partner, jwks } = await setup(t);
  jwks.set(PARTNER, { status: 503 });
  const remote = signer(`w2@${PARTNER}`);
  const r = await ingest(api, await agentMail(remote, { to: bob.address, type: 'task.request', body: {} }), {
    to: bob.address,
  });
  assert.equal(r.statusCode, 503, r.body);
  assert.equal(r.json().error.code, 'key_unavailable');
  assert.match(r.json().smtp_message, /^4\.7\.5 /);

  const raw = await agentMail(partner, { to: bob.address, type: 'task.request', body: {} });
  await api.db.block();
  const down = await ingest(api, raw, { to: bob.address });
  await api.db.unblock();
  assert.equal(down.statusCode, 503, down.body);
  // Whichever step meets the outage first (the key store or the queue) answers; both are temporary.
  assert.ok(['storage_unavailable', 'key_unavailable'].includes(down.json().error.code), down.body);
  assert.match(down.json().smtp_message, /^4\./);
  assert.equal(await count(api), 0);
  assert.equal((await ingest(api, raw, { to: bob.address })).statusCode, 200, 'the retry after the outage is stored');
  assert.equal(await count(api), 1);
});

test('the caller must present the ingress bearer secret', async (t) => {
  const { api, bob, partner } = await setup(t);
  const raw = await agentMail(partner, { to: bob.address, type: 'task.request', body: {} });
  for (const token of ['wrong', '']) {
    const r = await ingest(api, raw, { to: bob.address, token });
    assert.equal(r.statusCode, 401);
  }
  assert.equal(await count(api), 0);
});

test('a delivery status report sent to an agent (matched by Message-ID alone) is refused 5.7.1 and changes nothing', async (t) => {
  const { api, bob } = await setup(t);
  const { rows } = await api.db.pool.query(
    `SELECT id FROM enqueue_message(jsonb_build_array(jsonb_build_object('to_agent_id', 'x@agents.partner.test', 'channel', 'smtp', 'from_agent', 'bob@agents.test',
       'type', 't', 'body', '{}'::jsonb, 'status', 'queued', 'ttl_sec', 60, 'mail_message_id', 'orig-1@agents.test')))`,
  );
  await api.db.pool.query("UPDATE message SET status = 'sent' WHERE id = $1", [rows[0].id]);
  const dsn = Buffer.from(
    [
      'From: MAILER-DAEMON@mx.partner.test',
      `To: ${bob.address}`,
      'Subject: Undelivered Mail Returned to Sender',
      'Message-ID: <dsn-1@mx.partner.test>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'It failed.',
      '',
      '--B',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.partner.test',
      '',
      'Final-Recipient: rfc822; x@agents.partner.test',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 no such agent',
      '',
      '--B',
      'Content-Type: message/rfc822',
      '',
      `From: <${bob.address}>`,
      'Message-ID: <orig-1@agents.test>',
      'Subject: t',
      '',
      'body',
      '',
      '--B--',
      '',
    ].join('\r\n'),
  );
  const r = await ingest(api, dsn, { to: bob.address, from: '', auth: JSON.stringify({ dkim: [] }) });
  assert.equal(r.statusCode, 422, r.body);
  assert.equal(r.json().error.code, 'report_refused');
  assert.match(r.json().smtp_message, /^5\.7\.1 /);
  const m = (await api.db.pool.query('SELECT status, delivery_log FROM message WHERE id = $1', [rows[0].id])).rows[0];
  assert.equal(m.status, 'sent', 'the outbound message named by the Message-ID is untouched');
  assert.equal(m.delivery_log.length, 1);
  assert.equal(await count(api), 1, 'the report itself was not enqueued');
});

test('plus-addresses (RFC 5233): bob+detail reaches bob over the Rspamd road and over HTTP, the detail kept and shown', async (t) => {
  const { api, bob, partner } = await setup(t);
  const raw = await agentMail(partner, { to: bob.address, type: 'task.request', body: { n: 1 } });
  const r = await ingest(api, raw, { to: 'bob+invoices-2026@agents.test' });
  assert.equal(r.statusCode, 200, r.body);
  const sent = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: bob.auth,
    payload: { to: 'bob+notes@agents.test', type: 'note', body: {} },
  });
  assert.equal(sent.statusCode, 201, sent.body);
  const pulled = (
    await api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: bob.auth, payload: { max: 5 } })
  ).json().messages;
  assert.deepEqual(pulled.map((m: { detail: string | null }) => m.detail).sort(), ['invoices-2026', 'notes']);
  assert.ok(pulled.every((m: { to: string }) => m.to === bob.address));
  const status = await api.core.app.inject({ url: `/v1/messages/${sent.json().id}`, headers: bob.auth });
  assert.equal(status.json().detail, 'notes');
  // A detail outside RFC 5233's safe set, and a plus-address of an unknown agent, are refused.
  assert.equal((await ingest(api, raw, { to: 'bob+a b@agents.test' })).statusCode, 422);
  assert.equal((await ingest(api, raw, { to: 'nobody+x@agents.test' })).statusCode, 422);
});
