// Outbound fetches to sender-chosen hosts never reach our own network unless the
// allow-list names the address: judged on addresses (IPv4, IPv6, IPv4 embedded in IPv6),
// on resolved names, on IP literals, and through the partner JWKS resolver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupFunction } from 'node:net';
import { request } from 'undici';
import { loadConfig } from '../../src/config.js';
import { guardedDispatcher, parseAllowList, refusalOf } from '../../src/net/guarded-fetch.js';
import { createKeyResolver } from '../../src/keys/resolver.js';
import { fetchJwks } from '../../src/keys/jwks.js';
import { publicKeyFromSeed } from '../../src/core/signature.js';
import { createTestDatabase } from '../helpers/db.js';
import { loopbackLookup, startJwksServer } from '../keys/loopback.js';

test('refused: loopback, private, link-local, unique-local, multicast, reserved; IPv4 inside IPv6 too', () => {
  const none = parseAllowList([]);
  for (const a of [
    '127.0.0.1',
    '127.9.9.9',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    '224.0.0.1',
    '239.255.255.250',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::10.0.0.1',
  ])
    assert.ok(refusalOf(a, none), `${a} is refused`);
  for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])
    assert.equal(refusalOf(a, none), undefined, `${a} is public`);
  assert.ok(refusalOf('not-an-ip', none));
  const allow = parseAllowList(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  assert.equal(refusalOf('127.0.0.1', allow), undefined);
  assert.equal(refusalOf('::ffff:127.0.0.1', allow), undefined, 'the mapped form of an allowed address');
  assert.ok(refusalOf('127.0.0.2', allow), 'only what the list names');
  assert.equal(refusalOf('10.200.0.1', allow), undefined);
  assert.equal(refusalOf('fd12::1', allow), undefined);
  for (const bad of ['127.0.0.1/33', 'example.com', '10.0.0.0/8/1', '::1/129', ''])
    assert.throws(() => parseAllowList([bad]), /address or CIDR/);
  assert.throws(() => loadConfig({}, { fetchAllow: '10.0.0.0/99' }), /ADMP_FETCH_ALLOW/);
});

async function world(t: import('node:test').TestContext) {
  const web = await startJwksServer();
  t.after(() => web.stop());
  web.set('partner.example', { body: { keys: [] } });
  return web;
}

const get = async (url: string, dispatcher: ReturnType<typeof guardedDispatcher>) => {
  try {
    const res = await request(url, { dispatcher });
    await res.body.dump();
    return res.statusCode;
  } catch (err) {
    return (err as Error).message;
  }
};

test('a name resolving to loopback is refused before any connection; the allow-list admits it', async (t) => {
  const web = await world(t);
  const refused = guardedDispatcher({ allow: [], lookup: loopbackLookup() });
  const allowed = guardedDispatcher({ allow: ['127.0.0.0/8'], lookup: loopbackLookup() });
  t.after(() => Promise.all([refused.close(), allowed.close()]));
  const url = `http://partner.example:${web.port}/.well-known/agent-keys.json`;
  assert.match(String(await get(url, refused)), /refused to connect to partner\.example: 127\.0\.0\.1 is a loopback/);
  assert.equal(web.count('partner.example'), 0, 'nothing reached the server');
  assert.equal(await get(url, allowed), 200);
  assert.equal(web.count('partner.example'), 1);
});

test('IP literals are judged the same way (no name resolution to filter)', async (t) => {
  const web = await world(t);
  const refused = guardedDispatcher({ allow: [] });
  t.after(() => refused.close());
  assert.match(String(await get(`http://127.0.0.1:${web.port}/`, refused)), /refused to connect to 127\.0\.0\.1/);
  assert.match(String(await get(`http://[::1]:${web.port}/`, refused)), /refused to connect to ::1/);
  assert.match(String(await get(`http://[::ffff:127.0.0.1]:${web.port}/`, refused)), /refused/);
  assert.equal(web.count('127.0.0.1'), 0);
});

test('DNS rebinding: every connection is checked on the address it was made to', async (t) => {
  const web = await world(t);
  // A name whose answers alternate between an allowed and a refused address. Only
  // 127.0.0.1 is allowed; 127.0.0.2 is loopback too (the kernel routes all of 127/8 to lo).
  let n = 0;
  const rebinding: LookupFunction = (host, options, cb) =>
    loopbackLookup(() => true, n++ % 2 === 0 ? '127.0.0.1' : '127.0.0.2')(host, options, cb);
  const d = guardedDispatcher({ allow: ['127.0.0.1'], lookup: rebinding });
  t.after(() => d.close());
  const url = `http://partner.example:${web.port}/x`;
  // `reset`: each request on a new connection, each connection resolved and checked again.
  const once = async () => {
    try {
      const res = await request(url, { dispatcher: d, reset: true });
      await res.body.dump();
      return res.statusCode;
    } catch (err) {
      return (err as Error).message;
    }
  };
  const [first, second] = [await once(), await once()];
  assert.equal(first, 404);
  assert.match(String(second), /127\.0\.0\.2 is a loopback/);
  assert.equal(web.count('partner.example'), 1);
});

test('the partner JWKS resolver never fetches from our network unless ADMP_FETCH_ALLOW names it', async (t) => {
  const db = await createTestDatabase();
  const web = await world(t);
  t.after(() => db.drop());
  const seed = Buffer.alloc(32, 7);
  web.set('partner.example', {
    body: {
      keys: [{ kty: 'OKP', crv: 'Ed25519', kid: 'k1', x: Buffer.from(publicKeyFromSeed(seed)).toString('base64url') }],
    },
  });
  const settings = {
    domains: 'agents.ours.example',
    jwksScheme: 'http',
    jwksPort: String(web.port),
    dnsServers: '127.0.0.1:1',
    dnsTimeoutMs: '200',
  } as const;
  const guarded = createKeyResolver(loadConfig({}, settings), { db: db.pool, lookup: loopbackLookup() });
  const r = await guarded('partner.example', 'k1');
  assert.notEqual(r.status, 'found');
  assert.equal(web.count('partner.example'), 0, 'the JWKS server on loopback was never asked');
  const allowed = createKeyResolver(loadConfig({}, { ...settings, fetchAllow: '127.0.0.1' }), {
    db: db.pool,
    lookup: loopbackLookup(),
  });
  assert.equal((await allowed('partner.example', 'k1')).status, 'found');
  // fetchJwks says why it found nothing.
  const set = await fetchJwks('partner.example', {
    scheme: 'http',
    port: web.port,
    timeoutMs: 500,
    dispatcher: guardedDispatcher({ allow: [], lookup: loopbackLookup() }),
  });
  assert.equal(set.status, 'unavailable');
  assert.match(set.status === 'unavailable' ? set.reason : '', /loopback/);
});
