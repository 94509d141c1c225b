// Partner keys from DNS TXT `_agentkeys.<domain>` on a loopback DNS server, through
// the resolver the config builds (dnsServers, dnsTimeoutMs) and the full verifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { publicKeyFromSeed } from '../../src/core/signature.js';
import { agentKeyTxtRecords, createTxtResolver, fetchDnsKeys, parseAgentKeyTxt } from '../../src/keys/dns.js';
import { createKeyResolver } from '../../src/keys/resolver.js';
import { insertLocalKey, listValidKeys } from '../../src/db/keys.js';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import { createTestDatabase } from '../helpers/db.js';
import { startDns } from '../helpers/dns.js';
import { LOOPBACK_ALLOWED, loopbackLookup, startJwksServer } from './loopback.js';
import { outcome, verifyEml } from '../signature/verify-eml.js';

const T0 = 1_767_225_600;
const PARTNER = 'agents.c.example';
const seed = Buffer.alloc(32, 21);
const b64 = (s: Buffer): string => Buffer.from(publicKeyFromSeed(s)).toString('base64');

test('TXT records: tag lists, split strings joined, foreign records skipped', async (t) => {
  const dns = await startDns();
  let running = true;
  t.after(() => running && dns.stop());
  const x = b64(seed);
  dns.setTxt(
    `_agentkeys.${PARTNER}`,
    `kid=k1; x=${x}`,
    // Longer than 255 bytes: served as several strings of one record (RFC 1035 §3.3.14).
    `kid=k2; note=${'n'.repeat(300)}; x=${x}; agent=Dave@${PARTNER}`,
    'v=spf1 -all',
    `kid=k3; x=${x}; agent=dave@agents.evil.example`,
    `kid=k4; x=${x.slice(0, 20)}`,
  );
  const resolveTxt = createTxtResolver({ servers: [dns.server], timeoutMs: 500 });
  const raw = await resolveTxt(`_agentkeys.${PARTNER}`);
  assert.ok(
    raw.some((strings) => strings.length > 1),
    'the long record came back split',
  );
  const set = await fetchDnsKeys(PARTNER, resolveTxt);
  assert.equal(set.status, 'ok');
  assert.deepEqual(
    set.status === 'ok' && set.keys.map((k) => [k.kid, k.agent, k.source, Buffer.from(k.publicKey).toString('base64')]),
    [
      ['k1', null, 'dns', x],
      ['k2', `dave@${PARTNER}`, 'dns', x],
    ],
  );
  assert.deepEqual(await fetchDnsKeys('agents.none.example', resolveTxt), { status: 'absent' });
  await dns.stop();
  running = false;
  const down = await fetchDnsKeys(PARTNER, createTxtResolver({ servers: [dns.server], timeoutMs: 200 }));
  assert.equal(down.status, 'unavailable', JSON.stringify(down));
});

test('a message signed with a key published in DNS verifies; a kid not there is unknown', async (t) => {
  const db = await createTestDatabase();
  const dns = await startDns();
  const web = await startJwksServer(); // answers 404 for every domain: no JWKS published
  t.after(async () => {
    await web.stop();
    await dns.stop();
    await db.drop();
  });
  dns.setTxt(`_agentkeys.${PARTNER}`, `kid=k1; x=${b64(seed)}; agent=dave@${PARTNER}`);
  const config = loadConfig(
    {},
    {
      domains: 'agents.ours.example',
      jwksScheme: 'http',
      fetchAllow: LOOPBACK_ALLOWED,
      jwksPort: String(web.port),
      dnsServers: dns.server,
      dnsTimeoutMs: '500',
    },
  );
  const resolveKey = createKeyResolver(config, { db: db.pool, now: () => T0 * 1000, lookup: loopbackLookup() });
  const check = async (kid: string, agent = `dave@${PARTNER}`) =>
    verifyEml(
      (
        await buildSignedMessage(
          { to: 'bob@agents.ours.example', type: 'ping', body: { n: 1 } },
          { agent, kid, seed },
          { now: T0 },
        )
      ).eml,
      { rcpt: 'bob@agents.ours.example', now: T0, clockSkewSec: config.clockSkewSec, resolveKey },
    );
  const r = await check('k1');
  assert.equal(r.ok && r.keySource, 'dns', JSON.stringify(r));
  assert.equal(outcome(await check('k9')), 'unknown_key');
  assert.equal(outcome(await check('k1', `erin@${PARTNER}`)), 'unknown_key', 'the record binds the key to dave');
  assert.ok(web.count(PARTNER) >= 1, 'the JWKS was tried first');
});

test('our TXT records are what a partner parses back', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await insertLocalKey(db.pool, {
    agent: 'carol@agents.ours.example',
    kid: 'c1',
    publicKey: publicKeyFromSeed(seed),
    notBefore: new Date(0),
  });
  const records = agentKeyTxtRecords(await listValidKeys(db.pool, { agent: 'carol@agents.ours.example' }, new Date()));
  assert.deepEqual(records, [
    { name: '_agentkeys.agents.ours.example', text: `kid=c1; x=${b64(seed)}; agent=carol@agents.ours.example` },
  ]);
  const k = parseAgentKeyTxt(records[0]!.text, 'agents.ours.example');
  assert.deepEqual(k && [k.kid, k.agent, Buffer.from(k.publicKey).toString('base64')], [
    'c1',
    'carol@agents.ours.example',
    b64(seed),
  ]);
});
