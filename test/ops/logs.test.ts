// The log contract: one JSON summary line per API call and per ingested mail, with
// the fields an admin greps for, and no secret ever written: bearer tokens, HMAC
// secrets and signatures, the ingress token, key material, database passwords.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { wire } from '../../src/app/server.js';
import { addAgent } from '../../src/db/agents.js';
import { hmacBase } from '../../src/http/auth.js';
import { createTestDatabase } from '../helpers/db.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';

const INGRESS_TOKEN = 'ingress-token-that-must-never-be-logged-42';
const PARTNER = 'agents.partner.example';

function captureLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    lines,
    log: createLogger('trace', stream),
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('summary lines carry the ops fields, and no secret reaches the log', async (t) => {
  const db = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_DOMAINS: 'agents.test',
    ADMP_INGRESS_TOKEN: INGRESS_TOKEN,
    ADMP_POLICY_FILE: '',
  });
  const { lines, log, records } = captureLog();
  const core = await wire(config, db, log);
  t.after(async () => {
    await core.stop();
    await db.drop();
  });
  const app = core.app;
  const alice = await addAgent(db.pool, 'alice', 'agents.test');
  const bob = await addAgent(db.pool, 'bob', 'agents.test');
  await db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );

  // Bearer token: a send with a correlation id.
  const sent = await app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { authorization: `Bearer ${alice.token}` },
    payload: { to: 'bob@agents.test', type: 'note', body: { x: 1 }, correlation_id: 'corr-42' },
  });
  assert.equal(sent.statusCode, 201, sent.body);
  // HMAC: X-Signature over the request with bob's secret.
  const ts = String(Math.floor(Date.now() / 1000));
  const body = JSON.stringify({ max: 1 });
  const nonce = 'logs-test-nonce-0001';
  const signature = createHmac('sha256', Buffer.from(bob.hmac_secret, 'base64url'))
    .update(hmacBase('POST', '/v1/inbox/pull', ts, nonce, body))
    .digest('base64');
  const pulled = await app.inject({
    method: 'POST',
    url: '/v1/inbox/pull',
    headers: {
      'x-agent-id': 'bob',
      'x-timestamp': ts,
      'x-nonce': nonce,
      'x-signature': signature,
      'content-type': 'application/json',
    },
    payload: body,
  });
  assert.equal(pulled.statusCode, 200, pulled.body);
  // A refused credential.
  assert.equal(
    (await app.inject({ method: 'GET', url: '/v1/inbox', headers: { authorization: `Bearer ${alice.token}x` } }))
      .statusCode,
    401,
  );
  // The Rspamd road, with its bearer secret, a signed mail and a wrong token.
  const partner = signer(`w@${PARTNER}`);
  await trust(db.pool, partner);
  const raw = await agentMail(
    partner,
    { to: 'bob@agents.test', type: 'task.request', body: {}, correlation_id: 'corr-mail' },
    { messageId: '<m1@agents.partner.example>' },
  );
  const mailHeaders = {
    'content-type': 'message/rfc822',
    'x-envelope-to': 'bob@agents.test',
    'x-rspamd-queue-id': 'QID1',
    'x-rspamd-auth': JSON.stringify({ dkim: [{ result: 'allow', domain: PARTNER }] }),
  };
  assert.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/ingress/rspamd',
        payload: raw,
        headers: { ...mailHeaders, authorization: `Bearer ${INGRESS_TOKEN}` },
      })
    ).statusCode,
    200,
  );
  assert.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/ingress/rspamd',
        payload: raw,
        headers: { ...mailHeaders, authorization: 'Bearer guessed-token' },
      })
    ).statusCode,
    401,
  );
  // Whatever code might log by mistake: credentials, key material, the config.
  const withPassword = loadConfig({
    DATABASE_URL: 'postgres://admp:db-password-never-logged@127.0.0.1/admp',
    ADMP_INGRESS_TOKEN: INGRESS_TOKEN,
  });
  log.info(
    {
      agent: alice,
      key: {
        privateKey: Buffer.from(partner.seed).toString('hex'),
        seed: partner.seed,
        jwk: { kty: 'OKP', d: 'c2VjcmV0LWp3ay1k' },
      },
      config: withPassword,
    },
    'careless line',
  );
  log.info(
    { req: { headers: { authorization: `Bearer ${bob.token}`, 'x-signature': signature } } },
    'careless request dump',
  );

  const all = lines.join('\n');
  const secrets = {
    'alice token': alice.token,
    'bob token': bob.token,
    'hmac secret': bob.hmac_secret,
    'hmac signature': signature,
    'ingress token': INGRESS_TOKEN,
    'signing seed': Buffer.from(partner.seed).toString('hex'),
    'private JWK': 'c2VjcmV0LWp3ay1k',
    'database password': 'db-password-never-logged',
  };
  for (const [what, secret] of Object.entries(secrets)) {
    assert.ok(secret.length >= 8, `${what} is a real secret`);
    assert.ok(!all.includes(secret), `${what} leaked into the log`);
  }
  assert.ok(all.includes('[redacted]'));

  const http = records().filter((r) => r.event === 'http');
  const send = http.find((r) => r.route === '/v1/messages')!;
  assert.equal(send.outcome, 'ok');
  assert.equal(send.status, 201);
  assert.equal(send.message_id, sent.json().id);
  assert.equal(send.correlation_id, 'corr-42');
  assert.equal(send.channel, 'http');
  assert.equal(typeof send.ms, 'number');
  const pull = http.find((r) => r.route === '/v1/inbox/pull')!;
  assert.equal(pull.message_id, sent.json().id, 'a pull of one message names it');
  assert.equal(pull.agent, 'bob');
  assert.equal(http.find((r) => r.route === '/v1/inbox')!.outcome, 'unauthorized');

  const ingests = records().filter((r) => r.event === 'ingest');
  assert.equal(ingests.length, 1, 'one summary line per ingested mail');
  const line = ingests[0]!;
  assert.equal(line.road, 'rspamd');
  assert.equal(line.channel, 'smtp');
  assert.equal(line.outcome, 'stored');
  assert.equal(line.queue_id, 'QID1');
  assert.equal(line.mail_message_id, 'm1@agents.partner.example');
  assert.equal(line.correlation_id, 'corr-mail');
  assert.equal(line.from, partner.agent);
  assert.match(String(line.message_id), /^[0-9a-f-]{36}$/);
  assert.equal(typeof line.ms, 'number');
});
