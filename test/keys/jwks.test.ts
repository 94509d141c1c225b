// Partner keys from a JWKS served by a loopback HTTP server, through the production
// resolver (agent_key → JWKS → DNS TXT): found, cached with a TTL, refetched at most
// once per interval for an unknown kid, and the failures told apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { publicKeyFromSeed } from '../../src/core/signature.js';
import { createKeyResolver } from '../../src/keys/resolver.js';
import { fetchJwks, jwksUrl, ourJwks, parseJwks } from '../../src/keys/jwks.js';
import { insertLocalKey, listValidKeys } from '../../src/db/keys.js';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import { createTestDatabase } from '../helpers/db.js';
import { startDns } from '../helpers/dns.js';
import { LOOPBACK_ALLOWED, loopbackLookup, startJwksServer } from './loopback.js';
import { guardedDispatcher } from '../../src/net/guarded-fetch.js';
import { outcome, verifyEml } from '../signature/verify-eml.js';

const T0 = 1_767_225_600;
const PARTNER = 'agents.a.example';
const seed1 = Buffer.alloc(32, 11);
const seed2 = Buffer.alloc(32, 12);
const jwk = (seed: Buffer, kid: string, extra: Record<string, unknown> = {}) => ({
  kty: 'OKP',
  crv: 'Ed25519',
  kid,
  x: Buffer.from(publicKeyFromSeed(seed)).toString('base64url'),
  use: 'sig',
  alg: 'EdDSA',
  ...extra,
});

async function setup(t: import('node:test').TestContext, settings: Record<string, string> = {}) {
  const db = await createTestDatabase();
  const web = await startJwksServer();
  const dns = await startDns();
  const dispatcher = guardedDispatcher({ allow: [LOOPBACK_ALLOWED], lookup: loopbackLookup() });
  t.after(async () => {
    await dispatcher.close();
    await web.stop();
    await dns.stop();
    await db.drop();
  });
  const config = loadConfig(
    {},
    {
      domains: 'agents.ours.example',
      jwksScheme: 'http',
      fetchAllow: LOOPBACK_ALLOWED,
      jwksPort: String(web.port),
      keyCacheSec: '300',
      keyFetchTimeoutMs: '300',
      dnsServers: dns.server,
      dnsTimeoutMs: '500',
      ...settings,
    },
  );
  const clock = { ms: T0 * 1000 };
  const resolveKey = createKeyResolver(config, { db: db.pool, now: () => clock.ms, lookup: loopbackLookup() });
  const mail = async (seed: Buffer, kid: string, agent = `alice@${PARTNER}`) =>
    (
      await buildSignedMessage(
        { to: 'bob@agents.ours.example', type: 'ping', body: {} },
        { agent, kid, seed },
        { now: Math.floor(clock.ms / 1000) },
      )
    ).eml;
  const verify = async (eml: Buffer) =>
    verifyEml(eml, {
      rcpt: 'bob@agents.ours.example',
      now: Math.floor(clock.ms / 1000),
      clockSkewSec: config.clockSkewSec,
      resolveKey,
    });
  return { db, web, dns, config, clock, resolveKey, mail, verify, dispatcher };
}

test('a key from the partner JWKS verifies; the document is cached for keyCacheSec', async (t) => {
  const s = await setup(t);
  s.web.set(PARTNER, { body: { keys: [jwk(seed1, 'k1')] } });
  const r = await s.verify(await s.mail(seed1, 'k1'));
  assert.equal(r.ok && r.keySource, 'jwks', JSON.stringify(r));
  assert.equal(s.web.count(PARTNER), 1);
  s.clock.ms += 299_000;
  assert.equal(outcome(await s.verify(await s.mail(seed1, 'k1'))), 'ok');
  assert.equal(s.web.count(PARTNER), 1, 'served from the cache');
  // After the TTL the document is fetched again, and a removed key is gone.
  s.clock.ms += 2_000;
  s.web.set(PARTNER, { body: { keys: [] } });
  assert.equal(outcome(await s.verify(await s.mail(seed1, 'k1'))), 'unknown_key');
  assert.equal(s.web.count(PARTNER), 2);
});

test('an unknown kid causes one refetch before it is refused, at most once per interval', async (t) => {
  const s = await setup(t);
  s.web.set(PARTNER, { body: { keys: [jwk(seed1, 'k1')] } });
  assert.equal(outcome(await s.verify(await s.mail(seed1, 'k1'))), 'ok');
  s.web.set(PARTNER, { body: { keys: [jwk(seed1, 'k1'), jwk(seed2, 'k2')] } });
  // Seconds after the last fetch, a rotated-in kid is still found: one refetch, shared by concurrent lookups.
  s.clock.ms += 10_000;
  const burst = await Promise.all([1, 2, 3].map(async () => outcome(await s.verify(await s.mail(seed2, 'k2')))));
  assert.deepEqual(burst, ['ok', 'ok', 'ok']);
  assert.equal(s.web.count(PARTNER), 2);
  // Invented kids right after that refetch do not reach the partner's server again.
  for (const kid of ['forged-1', 'forged-2'])
    assert.equal(outcome(await s.verify(await s.mail(seed2, kid))), 'unknown_key');
  assert.equal(s.web.count(PARTNER), 2);
  s.clock.ms += 60_000;
  assert.equal(outcome(await s.verify(await s.mail(seed2, 'forged-3'))), 'unknown_key');
  assert.equal(s.web.count(PARTNER), 3, 'after the interval, one more refetch');
  // The DNS fallback was asked too, while a kid was unknown to the JWKS.
  assert.ok(s.dns.queries.includes(`TXT _agentkeys.${PARTNER}`));
});

test('failures: 404 → unknown_key, 5xx and timeouts → key_unavailable (temporary)', async (t) => {
  const s = await setup(t);
  const eml = await s.mail(seed1, 'k1');
  assert.equal(outcome(await s.verify(eml)), 'unknown_key', 'no JWKS (404) and no TXT record');
  s.clock.ms += 60_000;
  s.web.set(PARTNER, { status: 503, body: 'down' });
  const r = await s.verify(eml);
  assert.equal(outcome(r), 'key_unavailable');
  assert.match((r as { reason: string }).reason, /HTTP 503/);
  s.clock.ms += 60_000;
  s.web.set(PARTNER, { body: 'not json' });
  assert.equal(outcome(await s.verify(eml)), 'key_unavailable', 'a broken document is a temporary fault');
  s.clock.ms += 60_000;
  s.web.set(PARTNER, { body: { keys: [jwk(seed1, 'k1')] }, delayMs: 2_000 });
  const started = Date.now();
  const slow = await s.verify(eml);
  assert.equal(outcome(slow), 'key_unavailable');
  assert.ok(Date.now() - started < 1_500, 'bounded by keyFetchTimeoutMs');
  // The failure is cached: no new request within the refetch interval.
  const n = s.web.count(PARTNER);
  assert.equal(outcome(await s.verify(eml)), 'key_unavailable');
  assert.equal(s.web.count(PARTNER), n);
});

test('a found key wins over a failing source; our own domains never go to the network', async (t) => {
  const s = await setup(t);
  s.web.set(PARTNER, { status: 500 });
  s.dns.setTxt(`_agentkeys.${PARTNER}`, `kid=k1; x=${Buffer.from(publicKeyFromSeed(seed1)).toString('base64')}`);
  const r = await s.verify(await s.mail(seed1, 'k1'));
  assert.equal(r.ok && r.keySource, 'dns', JSON.stringify(r));
  // A message claiming one of our agents is checked against agent_key alone.
  s.web.set('agents.ours.example', { body: { keys: [jwk(seed1, 'k1')] } });
  assert.equal(outcome(await s.verify(await s.mail(seed1, 'k1', 'carol@agents.ours.example'))), 'unknown_key');
  assert.equal(s.web.count('agents.ours.example'), 0);
  await insertLocalKey(s.db.pool, {
    agent: 'carol@agents.ours.example',
    kid: 'k1',
    publicKey: publicKeyFromSeed(seed1),
    notBefore: new Date(0),
  });
  const local = await s.verify(await s.mail(seed1, 'k1', 'carol@agents.ours.example'));
  assert.equal(local.ok && local.keySource, 'local');
});

test('JWKS entries: only Ed25519 signing keys of this domain count', () => {
  const x = Buffer.from(publicKeyFromSeed(seed1)).toString('base64url');
  const keys = parseJwks(
    {
      keys: [
        jwk(seed1, 'good'),
        jwk(seed1, 'bound', { agent: `Alice@${PARTNER}` }),
        jwk(seed1, 'foreign-agent', { agent: 'alice@agents.evil.example' }),
        jwk(seed1, 'enc', { use: 'enc' }),
        jwk(seed1, 'private', { d: x }),
        { kty: 'EC', crv: 'P-256', kid: 'ec', x, y: x },
        { kty: 'OKP', crv: 'Ed25519', kid: 'short', x: 'AAAA' },
        { kty: 'OKP', crv: 'Ed25519', kid: 'bad kid', x },
        jwk(seed1, 'new-alg', { alg: 'Ed25519' }),
      ],
    },
    PARTNER,
  );
  assert.deepEqual(
    keys.map((k) => [k.kid, k.agent]),
    [
      ['good', null],
      ['bound', `alice@${PARTNER}`],
      ['new-alg', null],
    ],
  );
  assert.throws(() => parseJwks({ nokeys: [] }, PARTNER), /keys/);
});

test('our JWKS: local keys only, and a partner reading it finds them', async (t) => {
  const s = await setup(t);
  const at = new Date(T0 * 1000);
  await insertLocalKey(s.db.pool, {
    agent: 'carol@agents.ours.example',
    kid: 'c1',
    publicKey: publicKeyFromSeed(seed1),
    notBefore: new Date(0),
  });
  await s.db.pool.query(
    "INSERT INTO agent_key (domain, kid, agent, public_key, source, not_before) VALUES ('agents.a.example', 'p1', 'alice@agents.a.example', $1, 'pinned', 'epoch')",
    [Buffer.from(publicKeyFromSeed(seed2))],
  );
  const doc = ourJwks(await listValidKeys(s.db.pool, {}, at));
  assert.deepEqual(doc, {
    keys: [
      {
        kty: 'OKP',
        crv: 'Ed25519',
        kid: 'c1',
        x: Buffer.from(publicKeyFromSeed(seed1)).toString('base64url'),
        use: 'sig',
        alg: 'EdDSA',
        agent: 'carol@agents.ours.example',
      },
    ],
  });
  s.web.set('agents.ours.example', { body: doc });
  const o = { scheme: 'http' as const, port: s.web.port, timeoutMs: 1000, dispatcher: s.dispatcher };
  assert.equal(
    jwksUrl('agents.ours.example', o),
    `http://agents.ours.example:${s.web.port}/.well-known/agent-keys.json`,
  );
  assert.equal(
    jwksUrl('agents.ours.example', { scheme: 'https', port: 0 }),
    'https://agents.ours.example/.well-known/agent-keys.json',
  );
  s.web.set('agents.moved.example', { status: 301 });
  assert.deepEqual(await fetchJwks('agents.moved.example', o), { status: 'absent' }, 'redirects are not followed');
  const set = await fetchJwks('agents.ours.example', o);
  assert.deepEqual(set.status === 'ok' && set.keys.map((k) => [k.kid, k.agent, k.source]), [
    ['c1', 'carol@agents.ours.example', 'jwks'],
  ]);
});
