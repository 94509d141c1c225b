// agent_key queries on a real PostgreSQL: (domain, kid) addressing, validity windows,
// idempotent inserts, and the resolver adapter over them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { publicKeyFromSeed } from '../../src/core/signature.js';
import {
  findValidKey,
  insertLocalKey,
  listAllKeys,
  listValidKeys,
  pinPartnerKey,
  revokeKey,
} from '../../src/db/keys.js';
import { keyState } from '../../src/keys/key-state.js';
import { chainResolvers, databaseKeys } from '../../src/keys/resolver.js';
import { AdmpError } from '../../src/errors.js';
import { createTestDatabase } from '../helpers/db.js';

const pk = (n: number): Uint8Array => publicKeyFromSeed(Buffer.alloc(32, n));
const T = new Date('2026-01-01T00:00:00Z');
const at = (sec: number): Date => new Date(T.getTime() + sec * 1000);

test('keys are addressed by (domain, kid); the same kid in two domains are two keys', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await insertLocalKey(db.pool, { agent: 'Carol@Agents.Ours.Example', kid: 'k1', publicKey: pk(1), notBefore: T });
  await pinPartnerKey(db.pool, { agent: 'alice@agents.a.example', kid: 'k1', publicKey: pk(2), notBefore: T });
  const ours = await findValidKey(db.pool, 'agents.ours.example', 'k1', at(1));
  const theirs = await findValidKey(db.pool, 'agents.a.example', 'k1', at(1));
  assert.deepEqual(
    [ours?.agent, ours?.source, ours?.publicKey.equals(pk(1))],
    ['carol@agents.ours.example', 'local', true],
  );
  assert.deepEqual(
    [theirs?.agent, theirs?.source, theirs?.publicKey.equals(pk(2))],
    ['alice@agents.a.example', 'pinned', true],
  );
  assert.equal(await findValidKey(db.pool, 'agents.b.example', 'k1', at(1)), undefined);
  // Re-running the same import is harmless; another key under a used kid is refused.
  await pinPartnerKey(db.pool, { agent: 'alice@agents.a.example', kid: 'k1', publicKey: pk(2) });
  await assert.rejects(
    pinPartnerKey(db.pool, { agent: 'alice@agents.a.example', kid: 'k1', publicKey: pk(3) }),
    (e: AdmpError) => e.code === 'bad_request',
  );
  await assert.rejects(
    insertLocalKey(db.pool, { agent: 'carol@agents.ours.example', kid: 'bad kid', publicKey: pk(3) }),
    /key id/,
  );
  await assert.rejects(
    insertLocalKey(db.pool, { agent: 'not-an-address', kid: 'k2', publicKey: pk(3) }),
    /agent address/,
  );
  assert.equal((await listAllKeys(db.pool)).length, 2);
});

test('validity: not_before, not_after and revocation, at the caller clock', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const agent = 'carol@agents.ours.example';
  await insertLocalKey(db.pool, { agent, kid: 'old', publicKey: pk(1), notBefore: T, notAfter: at(100) });
  await insertLocalKey(db.pool, { agent, kid: 'new', publicKey: pk(2), notBefore: at(50) });
  await insertLocalKey(db.pool, { agent: 'dave@agents.ours.example', kid: 'd1', publicKey: pk(3), notBefore: T });
  const kids = async (sec: number, filter = {}) => (await listValidKeys(db.pool, filter, at(sec))).map((k) => k.kid);
  assert.deepEqual(await kids(10), ['old', 'd1']);
  assert.deepEqual(await kids(60), ['old', 'new', 'd1'], 'rotation overlap: both keys valid');
  assert.deepEqual(await kids(100), ['new', 'd1'], 'not_after is exclusive');
  assert.deepEqual(await kids(60, { agent: 'Carol@agents.ours.example' }), ['old', 'new']);
  assert.deepEqual(await kids(60, { domain: 'agents.a.example' }), []);
  assert.equal(await revokeKey(db.pool, 'agents.ours.example', 'new', at(70)), true);
  assert.equal(await revokeKey(db.pool, 'agents.ours.example', 'new', at(71)), false, 'already revoked');
  assert.deepEqual(await kids(69), ['old', 'new', 'd1']);
  assert.deepEqual(await kids(70), ['old', 'd1']);
  const states = Object.fromEntries((await listAllKeys(db.pool)).map((k) => [k.kid, keyState(k, at(200))]));
  assert.deepEqual(states, { old: 'expired', new: 'revoked', d1: 'valid' });
  assert.equal(
    keyState(
      (await listAllKeys(db.pool)).find((k) => k.kid === 'new')!,
      at(10),
    ),
    'pending',
  );
});

test('the resolver adapter: found / not_found, and a lost database is "unavailable", never "unknown"', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await insertLocalKey(db.pool, { agent: 'carol@agents.ours.example', kid: 'k1', publicKey: pk(1), notBefore: T });
  const clock = () => at(1).getTime();
  const local = databaseKeys(db.pool, clock);
  const found = await local('agents.ours.example', 'k1');
  assert.deepEqual(found.status === 'found' && [found.key.agent, found.key.source], [
    'carol@agents.ours.example',
    'local',
  ]);
  assert.deepEqual(await local('agents.ours.example', 'k2'), { status: 'not_found' });
  let remoteCalls = 0;
  const remote = async () => {
    remoteCalls++;
    return { status: 'not_found' } as const;
  };
  const chain = chainResolvers(['agents.ours.example'], local, [remote]);
  assert.deepEqual(await chain('agents.ours.example', 'k2'), { status: 'not_found' });
  assert.equal(remoteCalls, 0, 'our own domain is answered by agent_key alone');
  await db.pool.end();
  const lost = await databaseKeys(db.pool, clock)('agents.ours.example', 'k1');
  assert.equal(lost.status, 'unavailable');
  const viaChain = await chainResolvers(['agents.ours.example'], databaseKeys(db.pool, clock), [remote])(
    'agents.a.example',
    'k1',
  );
  assert.equal(viaChain.status, 'unavailable', 'a partner key might be pinned in the database we could not read');
});
