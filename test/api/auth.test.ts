// The three ways an agent authenticates, and what each refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { startTestApi } from '../helpers/api.js';
import { hmacBase } from '../../src/http/auth.js';
import { rotateCredentials } from '../../src/db/agents.js';
import { insertLocalKey } from '../../src/db/keys.js';

test('bearer tokens: valid, rotated (old one refused), and each agent sees only its own inbox', async (t) => {
  const api = await startTestApi({ ADMP_AUTH_CACHE_SEC: '0' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  assert.equal((await api.core.app.inject({ url: '/v1/inbox', headers: a.auth })).json().agent, a.address);
  assert.equal((await api.core.app.inject({ url: '/v1/inbox', headers: b.auth })).json().agent, b.address);
  const { token } = await rotateCredentials(api.db.pool, 'alice', ['token']);
  assert.equal((await api.core.app.inject({ url: '/v1/inbox', headers: a.auth })).statusCode, 401);
  assert.equal(
    (await api.core.app.inject({ url: '/v1/inbox', headers: { authorization: `Bearer ${token}` } })).statusCode,
    200,
  );
  const { rows } = await api.db.pool.query(
    "SELECT count(*)::int AS n FROM agent_credential WHERE token_hash IS NOT NULL AND position(convert_to($1, 'UTF8') in token_hash) > 0",
    [token],
  );
  assert.equal(rows[0].n, 0, 'tokens are stored hashed, never in the clear');
});

test('EdDSA JWT signed with the agent key: accepted; wrong key, wrong audience, expired, or too long-lived: refused', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  await api.agent('alice');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  await insertLocalKey(api.db.pool, { agent: 'alice@agents.test', kid: 'k1', publicKey: raw });
  const jwt = (opts: { key?: typeof privateKey; aud?: string; exp?: number; iat?: number; kid?: string } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: opts.kid ?? 'k1' })
      .setIssuer('alice@agents.test')
      .setAudience(opts.aud ?? 'agents.test')
      .setIssuedAt(opts.iat ?? now)
      .setExpirationTime(opts.exp ?? now + 120)
      .sign(opts.key ?? privateKey);
  };
  const call = async (token: string) =>
    api.core.app.inject({ url: '/v1/inbox', headers: { authorization: `Bearer ${token}` } });
  assert.equal((await call(await jwt())).statusCode, 200);
  const other = generateKeyPairSync('ed25519').privateKey;
  const now = Math.floor(Date.now() / 1000);
  for (const [why, token] of [
    ['signed by another key', await jwt({ key: other })],
    ['unknown kid', await jwt({ kid: 'k2' })],
    ['audience not ours', await jwt({ aud: 'elsewhere.test' })],
    ['expired', await jwt({ iat: now - 3000, exp: now - 1000 })],
    ['lifetime over an hour', await jwt({ exp: now + 7200 })],
    // A year-long token made of a future iat and an exp within the hour after it.
    ['iat a year ahead', await jwt({ iat: now + 31_536_000, exp: now + 31_536_000 + 600 })],
    ['iat beyond the skew', await jwt({ iat: now + 400, exp: now + 900 })],
    ['iat after exp', await jwt({ iat: now + 200, exp: now + 100 })],
  ] as const) {
    const r = await call(token);
    assert.equal(r.statusCode, 401, why);
    assert.equal(r.json().error.code, 'unauthorized', why);
  }
});

test('HMAC headers over method, path, timestamp, nonce and body hash', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  const body = JSON.stringify({ to: b.address, type: 't', body: { n: 1 } });
  const signed = (ts: number, payload = body, secret = a.hmac_secret, nonce = randomUUID()) => ({
    'x-agent-id': a.address,
    'x-timestamp': String(ts),
    'x-nonce': nonce,
    'content-type': 'application/json',
    'x-signature': createHmac('sha256', Buffer.from(secret, 'base64url'))
      .update(hmacBase('POST', '/v1/messages', String(ts), nonce, payload))
      .digest('base64'),
  });
  const now = Math.floor(Date.now() / 1000);
  const ok = await api.core.app.inject({ method: 'POST', url: '/v1/messages', headers: signed(now), payload: body });
  assert.equal(ok.statusCode, 201, ok.body);
  const tampered = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: signed(now),
    payload: body.replace('"n":1', '"n":2'),
  });
  assert.equal(tampered.statusCode, 401);
  const old = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: signed(now - 301),
    payload: body,
  });
  assert.equal(old.statusCode, 401);
  assert.match(old.json().error.message, /X-Timestamp/);
  const wrongSecret = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: signed(now, body, b.hmac_secret),
    payload: body,
  });
  assert.equal(wrongSecret.statusCode, 401);
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 1);
});

test('HMAC replay: the same signed request twice is refused (409), whatever the worker; the nonce is bound into the MAC', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  const body = JSON.stringify({ to: b.address, type: 't', body: { n: 1 } });
  const ts = String(Math.floor(Date.now() / 1000));
  const mac = (nonce: string) =>
    createHmac('sha256', Buffer.from(a.hmac_secret, 'base64url'))
      .update(hmacBase('POST', '/v1/messages', ts, nonce, body))
      .digest('base64');
  const headers = (nonce: string, signature = mac(nonce)) => ({
    'x-agent-id': 'alice',
    'x-timestamp': ts,
    'x-nonce': nonce,
    'x-signature': signature,
    'content-type': 'application/json',
  });
  const send = (h: Record<string, string>) =>
    api.core.app.inject({ method: 'POST', url: '/v1/messages', headers: h, payload: body });
  const nonce = 'n0nce-0123456789abcdef';
  assert.equal((await send(headers(nonce))).statusCode, 201);
  const again = await send(headers(nonce));
  assert.equal(again.statusCode, 409, again.body);
  assert.equal(again.json().error.code, 'replayed_request');
  // Another nonce on the captured MAC does not verify: the nonce is signed.
  assert.equal((await send(headers('another-nonce-0123456', mac(nonce)))).statusCode, 401);
  // The replay cache is the database's, so a second process (another worker) refuses it too.
  const [{ n }] = (await api.db.pool.query('SELECT count(*)::int AS n FROM replay_guard')).rows;
  assert.equal(n, 1);
  // Missing or malformed nonces, and every other spelling of the MAC, are refused before any lookup.
  const { 'x-nonce': _, ...noNonce } = headers('n0nce-fresh-000000001');
  assert.match((await send(noNonce)).json().error.message, /X-Nonce/);
  assert.match((await send(headers('short'))).json().error.message, /X-Nonce/);
  const n2 = 'n0nce-fresh-000000002';
  const good = mac(n2);
  const spellings = [
    good.replace(/=$/, ''), // unpadded
    good.replace(/\+/g, '-').replace(/\//g, '_'), // base64url
    `${good} `,
    `${good}==`,
    // Same bytes, non-canonical last character (its two spare bits set).
    good.slice(0, 42) +
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[
        'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.indexOf(good[42]!) + 1
      ]! +
      '=',
  ].filter((x) => x !== good);
  for (const sig of spellings) {
    const r = await send(headers(n2, sig));
    assert.equal(r.statusCode, 401, sig);
  }
  assert.equal((await send(headers(n2, good))).statusCode, 201, 'the one spelling, once');
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 2);
});
